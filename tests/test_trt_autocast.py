"""FP16 for TensorRT 11 through ModelOpt AutoCast, converted at a real shape on a real photo.

The shape and calibration logic runs everywhere on the real SCRFD files with `onnx` and ONNX
Runtime; the conversion itself runs where nvidia-modelopt[onnx] is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import model_dir, shared_image
from onnx import TensorProto, helper, numpy_helper

from helpers.compare import box_iou, face_parity, match_faces
from helpers.detector import Detector
from helpers.errors import UserError
from helpers.images import read_image
from helpers.letterbox import Preprocessor
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path
from helpers.trt.autocast import (
    autocast_fp16,
    calibration_blob,
    calibration_shape,
    with_declared_io,
    with_fixed_input,
)

needs_modelopt = pytest.mark.skipif(
    importlib.util.find_spec("modelopt") is None,
    reason="nvidia-modelopt not installed (pip install 'nvidia-modelopt[onnx]')",
)
SIZES = {  # (width, height) each model is checked at
    "scrfd_500m": [(640, 640), (480, 640), (1280, 736)],
    "scrfd_2.5g": [(640, 640), (480, 640), (1280, 736)],
    "scrfd_500m_bnkps": [(640, 640)],
}


def shared_model(name: str) -> onnx.ModelProto:
    path = model_dir() / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"no {path.name} in SCRFD_MODEL_DIR")
    return onnx.load(str(path))


def dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim
    ]


def run(model: onnx.ModelProto, height: int, width: int) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
    return session.run(None, {session.get_inputs()[0].name: image})


def wrong_sizes(declared, actual: dict[str, tuple[int, ...]]) -> dict[str, tuple]:
    """Tensors declared with a fixed dimension that differs from the one computed."""

    def fits(want: list[int | str], got: tuple[int, ...]) -> bool:
        return len(want) == len(got) and all(
            not isinstance(w, int) or w <= 0 or w == g for w, g in zip(want, got, strict=True)
        )

    return {vi.name: (dims(vi), actual[vi.name]) for vi in declared if not fits(dims(vi), actual[vi.name])}


def every_tensor_shape(model: onnx.ModelProto, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """What ONNX Runtime actually computes for every declared tensor, at one size."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(
        helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, None)
        for vi in model.graph.value_info
    )
    outputs = [o.name for o in probe.graph.output]
    return {n: a.shape for n, a in zip(outputs, run(probe, height, width), strict=True)}


@pytest.mark.parametrize(
    ("name", "opt", "want"),
    [
        ("scrfd_500m", None, (1, 3, 640, 640)),  # dynamic: the default opt shape, not 1x3x1x1
        ("scrfd_2.5g", (1, 3, 736, 1280), (1, 3, 736, 1280)),  # dynamic: the profile's opt shape
        ("scrfd_500m_bnkps", (1, 3, 736, 1280), (1, 3, 640, 640)),  # fixed: the model's own size
    ],
)
def test_calibration_shape_is_real(name, opt, want):
    assert calibration_shape(shared_model(name), opt) == want


def test_calibration_shape_refuses_a_rank_that_does_not_fit():
    with pytest.raises(UserError, match="has 4 dimensions, the shape 640x640 has 2"):
        calibration_shape(shared_model("scrfd_500m"), (640, 640))


def test_calibration_blob_is_the_letterboxed_photo():
    photo = shared_image("t1.jpg")
    blob = calibration_blob((2, 3, 736, 1280), photo)
    want, box = Preprocessor()(read_image(photo), (1280, 736))
    assert blob.shape == (2, 3, 736, 1280) and blob.dtype == np.float32
    assert np.array_equal(blob[0], want[0]) and np.array_equal(blob[1], want[0])
    assert box.new_width < 1280 and np.all(blob[..., box.new_width :] == (0 - 127.5) / 128)  # padding


def test_calibration_blob_refuses_a_non_image_input():
    with pytest.raises(UserError, match="Nx3xHxW image input, not 1x1x640x640"):
        calibration_blob((1, 1, 640, 640), sample_path())


def test_fixed_copy_declares_only_sizes_that_hold_at_its_shape():
    # scrfd_500m declares its 640x640 sizes (12800 rows...) although its input is dynamic.
    original = shared_model("scrfd_500m")
    fixed = onnx.shape_inference.infer_shapes(with_fixed_input(original, (1, 3, 736, 1280)), strict_mode=True)
    assert dims(fixed.graph.input[0]) == [1, 3, 736, 1280]
    assert dims(original.graph.input[0]) == [1, 3, "?", "?"]  # the original is untouched
    actual = every_tensor_shape(fixed, 736, 1280)
    assert not wrong_sizes([*fixed.graph.value_info, *fixed.graph.output], actual)
    assert wrong_sizes(original.graph.output, actual)  # what the export declares is wrong there


@pytest.mark.parametrize("name", ["scrfd_500m", "scrfd_2.5g"])
def test_declared_io_restores_dynamic_dims_and_drops_the_fixed_sizes(name):
    original = shared_model(name)
    # What AutoCast hands back: the copy fixed at 640x640, inner shapes inferred at that size.
    converted = onnx.shape_inference.infer_shapes(
        with_fixed_input(original, (1, 3, 640, 640)), strict_mode=True
    )
    restored = with_declared_io(converted, original)
    for a, b in zip(
        (*restored.graph.input, *restored.graph.output),
        (*original.graph.input, *original.graph.output),
        strict=True,
    ):
        assert (a.name, dims(a)) == (b.name, dims(b))
    actual = every_tensor_shape(restored, 736, 1280)
    assert wrong_sizes(converted.graph.value_info, actual)  # inner sizes of the fixed 640x640 copy ...
    assert not wrong_sizes(restored.graph.value_info, actual)  # ... replaced by ones true at any size
    assert {vi.name for vi in restored.graph.value_info} == {vi.name for vi in converted.graph.value_info}
    onnx.checker.check_model(restored, full_check=True)
    for height, width in ((480, 640), (736, 1280)):
        for got, want in zip(run(restored, height, width), run(original, height, width), strict=True):
            assert np.array_equal(got, want)


def test_declared_io_refuses_renamed_outputs():
    original = shared_model("scrfd_500m_bnkps")
    converted = onnx.ModelProto()
    converted.CopyFrom(original)
    converted.graph.output[0].name = "score_8_cast_to_fp32"
    with pytest.raises(UserError, match="renamed the model's inputs or outputs \\(score_8_cast_to_fp32\\)"):
        with_declared_io(converted, original)


def test_missing_modelopt_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "modelopt.onnx.autocast", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"pip install 'nvidia-modelopt\[onnx\]'"):
        autocast_fp16(model_dir() / "scrfd_500m_bnkps.onnx", tmp_path)
    assert not list(tmp_path.iterdir())


def min_iou(a, b) -> float:
    pairs = match_faces(a, b)
    return min(float(box_iou(a.boxes[[i]], b.boxes[[j]])[0, 0]) for i, j in pairs)


@needs_modelopt
def test_autocast_keeps_float32_io_dynamic_dims_and_the_faces(model_path, tmp_path):
    fp16 = autocast_fp16(model_path, tmp_path)
    stamp = fp16.stat().st_mtime_ns
    assert autocast_fp16(model_path, tmp_path) == fp16 and fp16.stat().st_mtime_ns == stamp  # made once
    model, original = onnx.load(str(fp16)), onnx.load(str(model_path))
    assert {vi.type.tensor_type.elem_type for vi in (*model.graph.input, *model.graph.output)} == {
        TensorProto.FLOAT
    }
    assert dims(model.graph.input[0]) == dims(original.graph.input[0])
    assert any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
    # Fixing the shape folded nothing: the Shape/Gather/Resize arithmetic is all still there.
    ops = Counter(n.op_type for n in model.graph.node if n.op_type not in ("Cast", "Constant"))
    assert ops == Counter(n.op_type for n in original.graph.node)
    photo = read_image(shared_image("t1.jpg"))
    fp32_backend = OnnxRuntimeBackend(model_path, providers=["CPUExecutionProvider"])
    fp16_backend = OnnxRuntimeBackend(fp16, providers=["CPUExecutionProvider"])
    for size in SIZES[model_path.stem]:
        a = Detector(fp32_backend, size).run(photo).faces
        b = Detector(fp16_backend, size).run(photo).faces
        parity = face_parity(a, b)
        assert len(a) == 6 and (parity.matched, parity.missing, parity.extra) == (6, 0, 0), size
        assert min_iou(a, b) > 0.99 and parity.score_delta < 0.01, size
        assert parity.box_error_px < 1.0 and parity.landmark_error_px < 1.0, size


def size_dependent_model(path):
    """|x| summed over H and W, as a global pooling without its division: it grows with the image."""
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), "axes")
    nodes = [
        helper.make_node("Abs", ["input"], ["abs"]),
        helper.make_node("ReduceSum", ["abs", "axes"], ["total"], keepdims=1),
        helper.make_node("Transpose", ["total"], ["out"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "size_dependent",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 1, 3])],
        [axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@needs_modelopt
def test_autocast_sees_the_range_of_a_real_size(tmp_path):
    # At 1x3x1x1 the sum is at most 3, so AutoCast's default run keeps it in FP16, which overflows
    # (max 65504) at 640x640, where it is about 2e5; at the real shape AutoCast keeps it in FP32.
    path = size_dependent_model(tmp_path / "sum.onnx")
    image = {"input": calibration_blob((1, 3, 640, 640), sample_path())}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, image)[0]
    fp16 = autocast_fp16(path, tmp_path)
    got = ort.InferenceSession(str(fp16), providers=["CPUExecutionProvider"]).run(None, image)[0]
    assert want.min() > 65504 and np.allclose(got, want, rtol=1e-3)
