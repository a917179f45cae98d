"""Every TensorRT path of the workbook on a GPU machine, in one run, with a report.

Runs the TensorRT and GPU tests, the CLI (build, detect three ways and at several sizes,
compare against ONNX Runtime, bench) and the TensorRT notebooks, and writes `report.md` plus
the executed notebooks into --out. Where `tensorrt` is trtemu (the TensorRT API emulator in
../shared/trtemu) the report is headed as such and the tests run again under its 11.x mode;
its timings and numerics are ONNX Runtime's, never TensorRT's.

On your own GPU machine, from the repository root (models in SCRFD_MODEL_DIR, photos in
SCRFD_IMAGE_DIR or the generated samples):

    python scripts/tensorrt_run.py --out my_tensorrt_run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.samples import sample_path  # noqa: E402

NOTEBOOKS = ["02_engine_building", "04_binding_allocation", "05_execute_v2_vs_v3", "08_troubleshooting"]


def is_trtemu() -> bool:
    import tensorrt

    return bool(getattr(tensorrt, "__trtemu__", False))


class Report:
    """Markdown lines plus a pass/fail count of the steps."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed: list[str] = []
        self.passed = 0

    def step(self, title: str, cmd: list[str], env: dict[str, str] | None = None, tail: int = 40) -> str:
        start = time.perf_counter()
        result = subprocess.run(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=900
        )
        seconds = time.perf_counter() - start
        output = (result.stdout + result.stderr).rstrip()
        shown = "\n".join(output.splitlines()[-tail:])
        prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        self.lines += [
            f"### {title}",
            "",
            f"`{prefix} {' '.join(cmd)}`".replace("` ", "`")
            + f" → exit {result.returncode} in {seconds:.1f} s",
            "",
            "```",
            shown,
            "```",
            "",
        ]
        if result.returncode == 0:
            self.passed += 1
        else:
            self.failed.append(title)
        print(f"{'ok  ' if result.returncode == 0 else 'FAIL'} {title} ({seconds:.1f} s)", flush=True)
        return output

    def check(self, title: str, ok: bool, detail: str) -> None:
        """A claim about what the steps produced, counted like a step."""
        self.lines += [f"- {'PASS' if ok else 'FAIL'}: {title} ({detail})", ""]
        if ok:
            self.passed += 1
        else:
            self.failed.append(title)
        print(f"{'ok  ' if ok else 'FAIL'} {title}", flush=True)


def sides(model: Path) -> list[str]:
    return ["--a", f"model={model},backend=onnxruntime", "--b", f"model={model},backend=tensorrt"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    models = Path(os.environ.get("SCRFD_MODEL_DIR", ROOT / "data" / "models"))
    images_dir = Path(os.environ.get("SCRFD_IMAGE_DIR", ""))
    images = sorted(str(p) for p in images_dir.glob("*.*") if p.suffix.lower() in (".jpg", ".png"))
    images = images or [str(sample_path(n)) for n in ("astronaut.png", "crowd48.png", "large_face.png")]
    dynamic = models / "scrfd_2.5g.onnx"
    static = models / "scrfd_500m_bnkps.onnx"
    emulated = is_trtemu()
    report = Report()
    cli = [py, "-m", "helpers"]

    report.step("doctor", [*cli, "doctor"])
    report.step("samples", [*cli, "samples"])
    pytest = [py, "-m", "pytest", "-m", "gpu or tensorrt", "-p", "no:cacheprovider", "-o", "addopts=-ra"]
    report.step("pytest -m 'gpu or tensorrt'", pytest, tail=25)
    if emulated:
        report.step("pytest -m 'gpu or tensorrt', 11.x API", pytest, {"TRTEMU_VERSION": "11.4.0"}, tail=25)
        everything = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not (browser or notebooks)"]
        report.step("whole test suite (the notebooks run below; no browser)", everything, tail=25)
    report.step("build static", [*cli, "build", str(static), "--no-progress"])
    report.step(
        "build dynamic, custom profile", [*cli, "build", str(dynamic), "--min", "160", "--max", "1280"]
    )
    report.step("build fp16", [*cli, "build", str(dynamic), "--fp16", "--no-progress"])
    for method in ("v2", "v3", "graph"):
        report.step(
            f"detect --trt-method {method}",
            [
                *cli,
                "detect",
                *images,
                "--model",
                str(dynamic),
                "--backend",
                "tensorrt",
                "--trt-method",
                method,
            ],
        )
    two_sizes = ["--input-size", "640", "--input-size", "160"]
    report.step(
        "detect at two sizes",
        [*cli, "detect", *images, "--model", str(dynamic), "--backend", "tensorrt", *two_sizes],
    )
    scratch = Path(tempfile.mkdtemp())
    for model in sorted(models.glob("*.onnx")):
        found = scratch / f"{model.stem}.json"
        report.step(
            f"compare ONNX Runtime vs TensorRT, {model.name}",
            [*cli, "compare", *images, *sides(model), "--json", str(found)],
            tail=60,
        )
        verdicts = (
            [row["verdict"] for row in json.loads(found.read_text())["images"]] if found.exists() else []
        )
        report.check(
            f"{model.name}: same faces as ONNX Runtime on every image",
            len(verdicts) == len(images) and set(verdicts) == {"same faces"},
            f"verdicts: {verdicts}",
        )
    report.step("bench", [*cli, "bench", "--model", str(dynamic), "--repeat", "50"])
    wide = ["--input-size", "1280", "736"]
    report.step("bench 1280x736", [*cli, "bench", "--model", str(dynamic), "--repeat", "10", *wide])
    if not args.skip_notebooks:
        paths = [str(ROOT / "notebooks" / f"{n}.ipynb") for n in NOTEBOOKS]
        tag = "trtemu" if emulated else "tensorrt"
        report.step(
            "notebooks", [py, "scripts/run_notebooks.py", *paths, "--out", str(args.out), "--tag", tag]
        )

    import tensorrt

    head = (
        "# TensorRT API emulator (trtemu), not TensorRT" if emulated else f"# TensorRT {tensorrt.__version__}"
    )
    summary = [
        head,
        "",
        f"Made by `python scripts/tensorrt_run.py` on {platform.node() or 'a GPU machine'}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, tensorrt module {tensorrt.__version__}.",
        "",
    ]
    if emulated:
        summary += [
            "Every TensorRT call below went to trtemu: real CUDA contexts, streams, device memory and",
            "graph capture, TensorRT's API, return values and error texts, but the network computed by",
            "ONNX Runtime on the CPU. Timings are ONNX Runtime's and say nothing about TensorRT; outputs",
            "equal ONNX Runtime's by construction.",
            "",
        ]
    summary += [f"**{report.passed} steps passed, {len(report.failed)} failed** {report.failed or ''}", ""]
    (args.out / "report.md").write_text("\n".join(summary + report.lines) + "\n")
    print(f"{report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
