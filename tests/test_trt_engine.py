"""TensorRT end to end on the real SCRFD models: build, cache, run three ways, compare by name.

These need a real TensorRT, pycuda and a CUDA GPU; elsewhere they are skipped with the reason.
The reference is ONNX Runtime on the CPU; outputs are compared by tensor name, never position.
"""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from helpers.errors import UserError
from helpers.layout import infer_layout
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.trt.backend import TensorRTBackend, tensorrt_available
from helpers.trt.build import BuildOptions, build_engine, start_build
from helpers.trt.runner import METHODS
from helpers.trt.runtime import tensorrt_status

AVAILABLE, WHY = tensorrt_available()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT not installed or not usable here: {WHY}"),
]
# TensorRT's FP32 may use TF32 on Ampere and newer, so allow a little more than float rounding.
FP32_TOL = {"rtol": 1e-2, "atol": 1e-2}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def sizes_for(model_path) -> list[tuple[int, int]]:
    """(height, width) to run: the fixed export only at 640, dynamic ones at several sizes."""
    if model_path.stem == "scrfd_500m_bnkps":
        return [(640, 640)]
    return [(480, 640), (640, 640), (128, 128), (480, 640)]


def image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, (1, 3, height, width)).astype(np.float32)


def assert_same_by_name(got: dict, want: dict, **tol) -> None:
    assert sorted(got) == sorted(want)
    for name, reference in want.items():
        assert got[name].shape == reference.shape, name
        assert not np.isnan(got[name]).any(), f"{name} was never written (still NaN poison)"
        np.testing.assert_allclose(got[name], reference, err_msg=name, **tol)


@pytest.mark.parametrize("method", METHODS)
def test_engine_matches_onnxruntime_by_name(model_path, cache_dir, method):
    reference = OnnxRuntimeBackend(model_path, providers=["CPUExecutionProvider"])
    with TensorRTBackend(model_path, method=method, cache_dir=cache_dir, progress=False) as backend:
        assert [i.name for i in backend.inputs] == [i.name for i in reference.inputs]
        assert sorted(o.name for o in backend.outputs) == sorted(o.name for o in reference.outputs)
        for k, (height, width) in enumerate(sizes_for(model_path)):
            inputs = {"input.1": image(height, width, seed=k)}
            assert_same_by_name(backend.run(inputs), reference.run(inputs), **FP32_TOL)
            shapes = {n: a.shape for n, a in reference.run(inputs).items()}
            dynamic = model_path.stem != "scrfd_500m_bnkps"
            assert backend.layout(width, height) == infer_layout(shapes, width, height, dynamic)


def test_second_build_is_a_cache_hit_with_manifest_and_inspector(model_path, cache_dir):
    first = build_engine(model_path, cache_dir=cache_dir, progress=False)
    second = build_engine(model_path, cache_dir=cache_dir, progress=False)
    assert second.cached and second.plan == first.plan
    manifest = json.loads(second.entry.manifest.read_text())
    assert manifest["key"]["tensorrt_version"] == tensorrt_status()[1]
    assert manifest["key"]["precision"] == "fp32"
    assert isinstance(json.loads(second.entry.inspector.read_text()), dict)
    assert any(p.name.startswith("timing-") for p in cache_dir.iterdir())


def test_fp16_engine_keeps_float32_io_and_close_outputs(model_path, cache_dir):
    import tensorrt as trt

    if not hasattr(trt.BuilderFlag, "FP16"):  # TensorRT 11+: FP16 comes from an AutoCast ONNX
        pytest.importorskip(
            "modelopt.onnx.autocast", reason="FP16 on TensorRT 11 needs nvidia-modelopt[onnx]"
        )
    options = BuildOptions(precision="fp16")
    height, width = sizes_for(model_path)[0]
    inputs = {"input.1": image(height, width)}
    want = OnnxRuntimeBackend(model_path, providers=["CPUExecutionProvider"]).run(inputs)
    with TensorRTBackend(model_path, options=options, cache_dir=cache_dir, progress=False) as backend:
        assert {t.dtype for t in backend.inputs + backend.outputs} == {"float32"}
        assert_same_by_name(backend.run(inputs), want, rtol=5e-2, atol=5e-2)


def test_shape_outside_profile_is_refused_with_the_fix(cache_dir, model_path):
    if model_path.stem == "scrfd_500m_bnkps":
        pytest.skip("fixed-size export: no profile")
    with (
        TensorRTBackend(model_path, cache_dir=cache_dir, progress=False) as backend,
        pytest.raises(UserError, match="--max 1x3x1280x1280"),
    ):
        backend.run({"input.1": image(1280, 1280)})


def test_backend_runs_from_a_worker_thread(model_path, cache_dir):
    height, width = sizes_for(model_path)[0]
    inputs = {"input.1": image(height, width)}
    results: dict = {}
    with TensorRTBackend(model_path, cache_dir=cache_dir, progress=False) as backend:
        main = backend.run(inputs)
        worker = threading.Thread(target=lambda: results.update(backend.run(inputs)))
        worker.start()
        worker.join()
    assert_same_by_name(results, main, **FP32_TOL)  # TensorRT does not promise bitwise repeats


def test_cancelled_build_caches_nothing(model_path, tmp_path):
    job = start_build(model_path, cache_dir=tmp_path, progress=False)
    job.cancel()
    with pytest.raises(UserError, match="cancelled"):
        job.wait()
    assert not list(tmp_path.glob("*.plan"))


def test_plan_from_another_tensorrt_is_refused_by_name(model_path, cache_dir, tmp_path):
    built = build_engine(model_path, cache_dir=cache_dir, progress=False)
    plan = shutil.copy(built.entry.plan, tmp_path / "old.plan")
    manifest = json.loads(built.entry.manifest.read_text())
    manifest["key"]["tensorrt_version"] = "8.6.1"
    (tmp_path / "old.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"TensorRT version: plan has 8\.6\.1"):
        TensorRTBackend(plan)
    (tmp_path / "old.json").unlink()
    with TensorRTBackend(plan) as backend:  # no manifest: TensorRT itself decides, and accepts
        height, width = sizes_for(model_path)[0]
        assert backend.run({"input.1": image(height, width)})
