"""The seed script and its fix in examples/: their pure parts, their TensorRT calls, the notebook's diffs.

The scripts need pycuda and a GPU (scripts/your_script_fixed_run.py runs them there); here the
shared plain module runs against trtemu (the TensorRT API emulator, not TensorRT) in its
fake-GPU mode, and its decode must count the same faces as the workbook's detector.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from test_trtemu_api import TRTEMU

from helpers.samples import sample_path

EXAMPLES = ROOT / "examples"
NOTEBOOK = ROOT / "notebooks" / "05b_your_script_fixed.ipynb"


@pytest.mark.parametrize("script", ["seed_worker_threads.py", "seed_worker_threads_fixed.py"])
def test_the_examples_compile(script):
    py_compile.compile(str(EXAMPLES / script), doraise=True)


def test_05b_shows_diffs_computed_from_the_two_scripts_function_by_function():
    from helpers.script_diff import MODULE, function_diff

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    text = "".join("".join(c["source"]) for c in cells)
    assert "```diff" not in text, "a hand-written diff: compute it with helpers.script_diff"
    pairs = re.findall(r'function_diff\(SEED, "?([\w.]+)"?, FIXED, "?([\w.]+)"?\)', code)
    assert len(pairs) == 4
    seed, fixed = EXAMPLES / "seed_worker_threads.py", EXAMPLES / "seed_worker_threads_fixed.py"
    for before, after in pairs:
        names = {"MODULE": MODULE}
        diff = function_diff(seed, names.get(before, before), fixed, names.get(after, after))
        assert diff.count("\n@@ ") >= 1, (before, after)


@pytest.mark.skipif(not (TRTEMU / "tensorrt").is_dir(), reason=f"trtemu not found at {TRTEMU}")
def test_the_plain_module_builds_under_trtemu_and_counts_the_workbooks_faces(default_model):
    code = """
import json, sys
from pathlib import Path
import cv2, onnxruntime as ort, tensorrt as trt
assert trt.__trtemu__
import plain_scrfd as p
from helpers.detector import Detector
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path
model = Path(sys.argv[1])
engine = p.load_engine(model, trt.Logger(trt.Logger.WARNING))
name, outputs = p.io_names(engine)
context = engine.create_execution_context()
shape_ok = context.set_input_shape(name, (1, 3, p.SIZE, p.SIZE))
session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
counts = {}
for sample in ("crowd48.png", "astronaut.png"):
    image = cv2.imread(str(sample_path(sample)))
    blob, _ = p.letterbox(image)
    raw = dict(zip([o.name for o in session.get_outputs()], session.run(None, {name: blob})))
    ours = len(Detector(OnnxRuntimeBackend(model), (640, 640), 0.5, 0.4).detect(image))
    counts[sample] = [p.count_faces(*p.by_shape(raw)), ours]
print(json.dumps({"outputs": outputs, "shape_ok": shape_ok, "counts": counts}))
"""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TRTEMU), str(EXAMPLES), str(ROOT)]),
        "TRTEMU_DEV_FAKE_GPU": "NVIDIA H200,9.0",
        "TRTEMU_QUIET": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(default_model)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["shape_ok"] and len(report["outputs"]) >= 6
    for plain, ours in report["counts"].values():
        assert plain == ours > 0


def _run_example(script: str, model) -> list[dict]:
    command = [sys.executable, str(EXAMPLES / script), "--model", str(model), "--workers", "2"]
    command += ["--image", str(sample_path("crowd48.png")), "--frames", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    workers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(workers) == 2, result.stdout[-2000:] + result.stderr[-3000:]
    return workers


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_on_a_gpu_the_seed_finds_nothing_and_the_fixed_script_finds_every_face(default_model):
    """The seed's failure and its fix, end to end (TensorRT or trtemu, with pycuda and a GPU)."""
    from helpers.trt.backend import tensorrt_available

    ok, why = tensorrt_available()
    if not ok:
        pytest.skip(f"TensorRT not installed or not usable here: {why}")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from helpers.detector import Detector
    from helpers.images import read_image
    from helpers.ort_backend import OnnxRuntimeBackend

    crowd = read_image(sample_path("crowd48.png"))
    want = len(Detector(OnnxRuntimeBackend(default_model), (640, 640)).detect(crowd))
    seed = _run_example("seed_worker_threads.py", default_model)
    assert all(w["faces"] == 0 and w["errors"] == [] for w in seed), seed  # the silent failure
    fixed = _run_example("seed_worker_threads_fixed.py", default_model)
    assert all(w["faces"] == want > 0 and w["errors"] == [] for w in fixed), fixed


@pytest.mark.skipif(not (TRTEMU / "tensorrt").is_dir(), reason=f"trtemu not found at {TRTEMU}")
@pytest.mark.parametrize("script", ["seed_worker_threads.py", "seed_worker_threads_fixed.py"])
def test_the_command_line_of_both_scripts(script, tmp_path):
    """--help and a bad --image, with an empty stand-in for pycuda (absent here) and trtemu as tensorrt."""
    (tmp_path / "pycuda").mkdir()
    for module in ("__init__", "autoinit", "driver"):
        (tmp_path / "pycuda" / f"{module}.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TRTEMU)]), "TRTEMU_QUIET": "1"}

    def run(*args):
        command = [sys.executable, str(EXAMPLES / script), *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    usage = run("--help")
    assert usage.returncode == 0
    assert all(f"--{a}" in usage.stdout for a in ("model", "image", "workers", "frames"))
    bad = run("--model", "m.onnx", "--image", str(tmp_path / "none.jpg"))
    assert bad.returncode == 1  # OpenCV may warn first; the script's own message is one line
    assert bad.stderr.strip().splitlines()[-1] == f"{tmp_path / 'none.jpg'}: not a readable image"
