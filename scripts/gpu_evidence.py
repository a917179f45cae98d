"""Real GPU evidence for helpers.cuda: the SCRFD context failure reproduced, its fixes, a benchmark.

Command used on the H100 (device tool, from the repository root, carry=[".whl"]):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD; PYTHONUNBUFFERED=1 python3 scripts/gpu_evidence.py \
      --out $OUT/gpu_evidence.json

The JSON is then copied to reports/gpu_evidence.json, where notebooks 03 and 05 show it on
machines without a GPU. TensorRT cannot be installed on that machine, so nothing here runs
TensorRT: the demonstrations in helpers.cuda.demos launch kernels through the CUDA driver in
place of an engine's, on buffers of SCRFD's I/O sizes. This driver runs them, turns what they
return into expected-vs-observed checks, and adds interop answers for the facts file.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.cuda import demos  # noqa: E402
from helpers.cuda.check import call, error_name  # noqa: E402
from helpers.cuda.context import CudaContext, native  # noqa: E402
from helpers.cuda.doctor import doctor  # noqa: E402
from helpers.cuda.evidence import benchmark_table  # noqa: E402
from helpers.cuda.stream import Stream  # noqa: E402


class Evidence:
    """Collects checks (expected vs observed) and errors of sections that broke."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []

    def check(self, name: str, expected: str, observed: Any, passed: bool) -> None:
        row = {"name": name, "expected": expected, "observed": str(observed), "pass": bool(passed)}
        self.checks.append(row)
        print(f"[{'PASS' if passed else 'FAIL'}] {name}: {observed}")

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        print(f"\n== {name}")
        try:
            yield
        except Exception as exc:  # record and go on: one broken section must not hide the rest
            self.errors.append({"section": name, "error": f"{type(exc).__name__}: {exc}"})
            traceback.print_exc()


def run_pytest() -> dict[str, Any]:
    files = sorted(glob.glob(str(ROOT / "tests" / "test_cuda_*.py")))
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", *files]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(done.stdout[-3000:], done.stderr[-2000:])
    tail = [line for line in done.stdout.splitlines() if line.strip()][-1:]
    return {"returncode": done.returncode, "summary": tail[0] if tail else done.stderr[-500:]}


def context_failure(ev: Evidence, cubin: bytes) -> None:
    """The bug with NaN and zero poison, what the worker sees, the forum fix, the three fixes."""
    for poison, label in ((np.nan, "nan"), (0.0, "zero")):
        bug = demos.context_mismatch(cubin, poison)
        faces = len(demos.decode_standin(bug.output))
        ev.check(
            f"ignored_launch_error_leaves_output_{label}",
            f"launch fails, output stays all {label}, decodes to 0 faces (the report's zero scores)",
            f"{bug.status}; output: {demos.describe_output(bug.output, poison)}; faces decoded: {faces}",
            bug.status != "CUDA_SUCCESS" and not bug.written and faces == 0,
        )
    ev.check(
        "worker_thread_context",
        "the CUDA runtime made the primary context current in the worker",
        bug.context,
        "the primary context" in bug.context,
    )
    ev.check(
        "foreign_stream_launch_fails",
        "CUDA_ERROR_INVALID_HANDLE: kernel of the current (primary) context, stream of the private one",
        bug.status,
        bug.status == "CUDA_ERROR_INVALID_HANDLE",
    )
    for name, observed in demos.foreign_stream_observations(cubin).items():
        ev.check(f"worker_{name}", "recorded (primary current in the worker)", observed, True)
    probe = demos.cuda_init_creates_no_context()
    ev.check(
        "cuda_init_creates_no_context",
        "no context after cuda.init(); pycuda objects refused",
        "; ".join(f"{k}: {v}" for k, v in probe.items()),
        "no CUDA context current" in probe["context after cuda.init()"]
        and "explicit_context_dependent" in probe["cuda.Stream() then"],
    )
    for fix in demos.fixes(cubin):
        ev.check(
            fix.name,
            f"CUDA_SUCCESS and the engine's answer ({fix.how})",
            f"{fix.status}; {fix.context}; faces decoded: {len(demos.decode_standin(fix.output))}",
            fix.status == "CUDA_SUCCESS" and fix.written,
        )


def early_read(ev: Evidence, cubin: bytes, ctx: CudaContext) -> None:
    result = demos.read_before_sync(cubin, ctx)
    stale = float((result.early == 0).mean())
    ev.check(
        "read_before_synchronize_is_stale",
        "all host values still 0 right after enqueue, 0 faces",
        f"launch {result.status}, stream done: {result.done_when_read}, stale fraction {stale}, "
        f"faces decoded: {len(demos.decode_standin(result.early))}",
        stale == 1.0 and not result.done_when_read,
    )
    ev.check(
        "event_timer_refuses_early_read",
        "UserError before synchronize",
        result.timer_before_sync,
        "synchronize" in result.timer_before_sync,
    )
    ev.check(
        "read_after_synchronize_is_fresh",
        "the engine's answer after synchronize, 1 face",
        f"{demos.describe_output(result.late, 0.0)}, faces decoded: "
        f"{len(demos.decode_standin(result.late))}, kernel+copy took {result.elapsed_ms:.1f} ms",
        np.array_equal(result.late, demos.planted_output()),
    )


def interop(ev: Evidence, ctx: CudaContext) -> dict[str, Any]:
    """Answers for the facts file: pycuda handles in cudart, cuda-python signatures."""
    import cuda.bindings
    from cuda.bindings import driver
    from cuda.bindings import runtime as cudart

    with ctx.activate():
        stream = Stream(ctx)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            query = error_name(cudart.cudaStreamQuery(stream.handle)[0])
            owner = native(call(driver.cuStreamGetCtx, stream.handle))
        stream.close()
    ev.check(
        "pycuda_stream_handle_accepted_by_cudart",
        "cudaSuccess, stream owned by the context",
        f"cudaStreamQuery -> {query}; cuStreamGetCtx == ctx: {owner == ctx.handle}",
        query == "cudaSuccess" and owner == ctx.handle,
    )
    return {
        "cuda_bindings_version": cuda.bindings.__version__,
        "cudaGraphInstantiate": cudart.cudaGraphInstantiate.__doc__.splitlines()[0],
        "cudaStreamBeginCapture": cudart.cudaStreamBeginCapture.__doc__.splitlines()[0],
        "cudaEventElapsedTime": cudart.cudaEventElapsedTime.__doc__.splitlines()[0],
        "warnings_passing_int_handles": [str(w.message) for w in caught],
        "invalid_device_error": demos.error_text(lambda: call(cudart.cudaSetDevice, 9999)),
        "error_strings": {
            "CUDA_ERROR_INVALID_HANDLE": call(
                driver.cuGetErrorString, driver.CUresult.CUDA_ERROR_INVALID_HANDLE
            ).decode(),
            "cudaErrorInvalidResourceHandle": cudart.cudaGetErrorString(
                cudart.cudaError_t.cudaErrorInvalidResourceHandle
            )[1].decode(),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu_evidence.json")
    parser.add_argument("--skip-pytest", action="store_true")
    args = parser.parse_args()
    ev = Evidence()
    report: dict[str, Any] = {
        "command": " ".join(__doc__.split("\n\n")[2].replace("\\", " ").split()),
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tensorrt": "not available; CUDA-level stand-in",
        "stand_in": "driver-launched kernels on SCRFD-sized buffers: 1x3x640x640 float32 in, "
        "16800x15 float32 out; not TensorRT, not SCRFD's compute",
        "doctor": doctor(),
    }
    if not args.skip_pytest:
        with ev.section("pytest -m gpu"):
            report["pytest"] = run_pytest()
            ev.check(
                "pytest_gpu", "returncode 0", report["pytest"]["summary"], report["pytest"]["returncode"] == 0
            )
    cubin, report["compiler"] = demos.compile_kernels()
    ctx = CudaContext.primary()
    with ev.section("context failure and fixes"):
        context_failure(ev, cubin)
    with ev.section("read before synchronize"):
        early_read(ev, cubin, ctx)
    with ev.section("interop"):
        report["interop"] = interop(ev, ctx)
    with ev.section("benchmark"):
        report["benchmark"] = demos.benchmark(cubin, ctx)
        ev.check(
            "graph_replay_output_correct",
            "graph output equals the reference",
            "first 4096 outputs compared",
            report["benchmark"]["graph_output_correct"],
        )
        print(benchmark_table(report["benchmark"]))
    ctx.release()
    report["checks"], report["errors"] = ev.checks, ev.errors
    report["all_passed"] = not ev.errors and all(c["pass"] for c in ev.checks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}; all passed: {report['all_passed']}")
    return 0 if report["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
