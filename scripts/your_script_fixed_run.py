"""Run the seed's script and its fixed version on a GPU machine; record both for CPU readers.

Each example runs in its own process (one worker thread per video stream) and prints one JSON
line per worker; this writes them, the tail of each one's stderr and the machine into one
report that notebooks/05b_your_script_fixed.ipynb shows. Where `tensorrt` is trtemu (the
TensorRT API emulator) the report says so in its label; its numerics are ONNX Runtime's.

    PYTHONPATH=../shared/trtemu python scripts/your_script_fixed_run.py --model data/models/scrfd_2.5g.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.atomic import write_text  # noqa: E402
from helpers.samples import sample_path  # noqa: E402

EXAMPLES = {"before": "seed_worker_threads.py", "after": "seed_worker_threads_fixed.py"}


def gpu_name() -> str:
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=30)
        return result.stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "an unnamed GPU"


def tensorrt_is_trtemu() -> bool:
    probe = "import tensorrt; print(getattr(tensorrt, '__trtemu__', False))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    return result.stdout.strip().endswith("True")


def run_example(script: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(ROOT / "examples" / script), "--model", str(args.model)]
    command += ["--image", str(args.image), "--workers", str(args.workers), "--frames", str(args.frames)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=os.environ)
    workers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    trt_lines = [line for line in (result.stdout + result.stderr).splitlines() if "[TRT]" in line]
    return {
        "command": " ".join(["python", f"examples/{script}", *command[2:]]),
        "returncode": result.returncode,
        "workers": workers,
        "tensorrt_log": trt_lines[:20],
        "stderr_tail": result.stderr.splitlines()[-15:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "data" / "models" / "scrfd_2.5g.onnx")
    parser.add_argument("--image", type=Path, default=None, help="default: the crowd48 sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "trtemu" / "your_script_fixed.json")
    args = parser.parse_args()
    args.image = args.image or sample_path("crowd48.png")
    emulated = tensorrt_is_trtemu()
    machine = gpu_name()
    label = (
        f"recorded on {machine} through trtemu (TensorRT API emulator), not TensorRT"
        if emulated
        else f"recorded on {machine} with TensorRT"
    )
    report = {
        "label": label,
        "machine": machine,
        "trtemu": emulated,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "image": args.image.name,
        "model": args.model.name,
        **{side: run_example(script, args) for side, script in EXAMPLES.items()},
    }
    write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"{label}: wrote {args.out}")


if __name__ == "__main__":
    main()
