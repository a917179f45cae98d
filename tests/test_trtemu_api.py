"""The TensorRT calls of the build and the logger, run in CI against trtemu without a GPU.

trtemu (`../shared/trtemu`, the TensorRT API emulator, **not TensorRT**) copies the TensorRT
10.4 / 11.x Python API; with TRTEMU_DEV_FAKE_GPU it builds, deserializes and checks shapes
without CUDA (nothing can be enqueued). Each test runs in a subprocess, because importing it
as `tensorrt` would change what every other test sees. It proves our calls match the API
surface and its documented return values, nothing about TensorRT's numerics or speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, model_dir

TRTEMU = ROOT.parent / "shared" / "trtemu"
pytestmark = pytest.mark.skipif(
    not (TRTEMU / "tensorrt").is_dir(), reason=f"trtemu (TensorRT API emulator) not found at {TRTEMU}"
)
PRELUDE = """
import json, sys
from pathlib import Path
import tensorrt as trt
assert trt.__trtemu__, "not the emulator"
from helpers.trt.cache import BuildKey, EngineCache, Target, file_sha256
from helpers.trt.build import BuildOptions, _build_plan, read_onnx_input, resolve_profile
from helpers.trt.progress import ProgressState
def build(model, tmp, precision="fp32", listener=None):
    path = Path(model)
    options = BuildOptions(precision=precision)
    profile = resolve_profile(read_onnx_input(path), options)
    target = Target(trt.__version__, "NVIDIA H200", "9.0")
    key = BuildKey(file_sha256(path), target, precision, profile, 3, None)
    state = ProgressState()
    if listener:
        state.subscribe(listener)
    plan, layers = _build_plan(path, options, profile, EngineCache(tmp), key, state)
    return plan, layers, state
"""


def under_trtemu(code: str, *args: object, version: str = "10.4.0") -> dict:
    """Run PRELUDE + code with trtemu as `tensorrt` (fake H200); return the JSON it prints last."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TRTEMU), str(ROOT)]),
        "TRTEMU_DEV_FAKE_GPU": "NVIDIA H200,9.0",
        "TRTEMU_QUIET": "1",
        "TRTEMU_VERSION": version,
    }
    script = PRELUDE + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_trtemu_logger_drops_verbose_before_it_reaches_python_work():
    out = under_trtemu("""
        from helpers.trt import runtime
        seen = []
        runtime._BOOK.record = lambda severity, message: seen.append(severity)
        log = runtime.logger()
        for severity in trt.ILogger.Severity.__members__.values():
            log.log(severity, "x")
        trt.Builder(log)  # TensorRT itself logs at every severity to an ILogger subclass
        print(json.dumps(sorted(set(seen))))
    """)
    assert out == ["ERROR", "INTERNAL_ERROR", "WARNING"]


@pytest.mark.parametrize("version", ["10.4.0", "11.4.0"])
def test_trtemu_build_survives_a_failing_progress_display(version, tmp_path):
    """Before the fix, an exception in a listener cancelled the build ('no error was logged')."""
    model = model_dir() / "scrfd_2.5g.onnx"
    if not model.is_file():
        pytest.skip("no scrfd_2.5g.onnx in SCRFD_MODEL_DIR")
    out = under_trtemu(
        """
        def broken(state):
            raise RuntimeError("widget comm closed")
        plan, layers, state = build(sys.argv[1], Path(sys.argv[2]), listener=broken)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(plan)
        from helpers.trt.specs import specs_from_engine
        specs = specs_from_engine(engine)
        print(json.dumps({
            "plan": plan[:8].decode(), "error": state.listener_error, "layers": json.loads(layers) != {},
            "inputs": [[s.name, list(s.shape), list(s.profile.max)] for s in specs if s.is_input],
            "outputs": len([s for s in specs if not s.is_input]),
        }))
        """,
        model,
        tmp_path,
        version=version,
    )
    assert out["plan"] == "TRTEMU01" and out["layers"]
    assert out["error"] == "RuntimeError: widget comm closed"
    assert out["inputs"] == [["input.1", [1, 3, -1, -1], [1, 3, 640, 640]]] and out["outputs"] == 9


def test_trtemu_parser_errors_are_one_line_user_errors(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not a model")
    out = under_trtemu(
        """
        from helpers.errors import UserError
        from helpers.trt.build import _build_plan, BuildOptions
        from helpers.trt.cache import BuildKey, EngineCache, Target
        key = BuildKey("0" * 64, Target(trt.__version__, "NVIDIA H200", "9.0"), "fp32", None, 3, None)
        cache = EngineCache(Path(sys.argv[2]))
        try:
            _build_plan(Path(sys.argv[1]), BuildOptions(), None, cache, key, ProgressState())
        except UserError as exc:
            print(json.dumps(str(exc)))
        """,
        broken,
        tmp_path,
    )
    assert out.startswith("TensorRT cannot parse broken.onnx") and "\n" not in out
