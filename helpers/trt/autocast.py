"""FP16 for TensorRT 11, which has no `BuilderFlag.FP16`: an FP16 ONNX made by NVIDIA ModelOpt AutoCast.

AutoCast keeps in FP32 the nodes whose values a reference run finds outside FP16's safe range; left
alone, it runs random numbers with dynamic dimensions set to 1 (1x3x1x1 for the dynamic SCRFD exports),
and ModelOpt 0.40-0.41 refuse real data whose shape is not the declared one. So a copy fixed at the
profile's opt shape is converted on a letterboxed photo, then the dynamic dimensions are put back.
Fixing the shape folds nothing (on the SCRFD exports: same nodes, Shape/Gather/Resize included, and
same initializers as converting the dynamic model), so every size still runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.atomic import write_bytes
from helpers.errors import UserError
from helpers.images import read_image
from helpers.letterbox import Preprocessor
from helpers.samples import sample_path
from helpers.trt.cache import file_sha256
from helpers.trt.specs import DEFAULT_OPT_SIDE, Shape, shape_text

if TYPE_CHECKING:
    import onnx

AUTOCAST_HINT = "pip install 'nvidia-modelopt[onnx]'"
DEFAULT_SHAPE: Shape = (1, 3, DEFAULT_OPT_SIDE, DEFAULT_OPT_SIDE)


def image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The model's one image input (graph inputs that are initializers are weights)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise UserError(f"the model has {len(inputs)} inputs; SCRFD exports have one image input")
    return inputs[0]


def calibration_shape(model: onnx.ModelProto, opt_shape: Shape | None = None) -> Shape:
    """The declared size where it is fixed, the opt shape (default 1x3x640x640) where it is dynamic."""
    dims = image_input(model).type.tensor_type.shape.dim
    wanted = opt_shape or DEFAULT_SHAPE
    if len(dims) != len(wanted):
        raise UserError(
            f"the model's input has {len(dims)} dimensions, the shape {shape_text(wanted)} has {len(wanted)}"
        )
    return tuple(d.dim_value if d.dim_value > 0 else w for d, w in zip(dims, wanted, strict=True))


def calibration_blob(shape: Shape, image: Path) -> np.ndarray:
    """A real photo letterboxed to an NxCxHxW shape by the project's own preprocessing."""
    if len(shape) != 4 or shape[1] != 3:
        raise UserError(f"calibration needs an Nx3xHxW image input, not {shape_text(shape)}")
    blob, _ = Preprocessor()(read_image(image), (shape[3], shape[2]))
    return np.repeat(blob, shape[0], axis=0)  # a copy: the preprocessor reuses its buffer


def with_fixed_input(model: onnx.ModelProto, shape: Shape) -> onnx.ModelProto:
    """A copy with the image input fixed at `shape` and no inner or output sizes from another size."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.value_info[:]  # an export may declare its 640x640 sizes even with dynamic input
    for output in fixed.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            dim.Clear()  # unknown size, rank kept: AutoCast's checker wants a shape on outputs
    for dim, size in zip(image_input(fixed).type.tensor_type.shape.dim, shape, strict=True):
        dim.dim_value = size
    return fixed


def with_declared_io(converted: onnx.ModelProto, original: onnx.ModelProto) -> onnx.ModelProto:
    """The converted model with the original's input and output shapes, inner shapes re-inferred."""
    import onnx

    declared = {vi.name: vi.type.tensor_type.shape for vi in (*original.graph.input, *original.graph.output)}
    renamed = [vi.name for vi in (*converted.graph.input, *converted.graph.output) if vi.name not in declared]
    if renamed:
        raise UserError(
            f"AutoCast renamed the model's inputs or outputs ({', '.join(renamed)}); "
            "use the nvidia-modelopt version the README names"
        )

    def declare(model: onnx.ModelProto) -> onnx.ModelProto:
        for vi in (*model.graph.input, *model.graph.output):
            vi.type.tensor_type.shape.CopyFrom(declared[vi.name])
        return model

    restored = onnx.ModelProto()
    restored.CopyFrom(converted)
    del declare(restored).graph.value_info[:]  # inferred at the fixed size
    return declare(onnx.shape_inference.infer_shapes(restored, strict_mode=True))


def autocast_fp16(onnx_path: Path, folder: Path, opt_shape: Shape | None = None) -> Path:
    """An FP16 copy (float32 I/O) written once into `folder`, named after the source and the shape."""
    import onnx

    original = onnx.load(str(onnx_path))
    shape = calibration_shape(original, opt_shape)
    target = folder / f"{onnx_path.stem}-{file_sha256(onnx_path)[:12]}-{shape_text(shape)}.fp16.onnx"
    if target.exists():
        return target
    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError:
        raise UserError(
            f"FP16 on TensorRT 11+ needs an FP16 ONNX made by NVIDIA ModelOpt AutoCast: {AUTOCAST_HINT}"
        ) from None
    with tempfile.TemporaryDirectory(prefix="scrfd-autocast-") as tmp:
        fixed, data = Path(tmp, "fixed.onnx"), Path(tmp, "calibration.npz")
        onnx.save(with_fixed_input(original, shape), str(fixed))
        feed: dict[str, Any] = {image_input(original).name: calibration_blob(shape, sample_path())}
        np.savez(data, **feed)  # the one format every AutoCast version reads
        try:
            converted = convert_to_mixed_precision(
                onnx_path=str(fixed),
                low_precision_type="fp16",
                keep_io_types=True,
                calibration_data=str(data),
            )
        except Exception as exc:  # ModelOpt raises bare Exception, ValueError, checker errors
            first = (str(exc).strip().splitlines() or ["no message"])[0]
            raise UserError(
                f"AutoCast could not convert {onnx_path.name} to FP16 ({type(exc).__name__}: {first}); "
                "its log above names the node"
            ) from None
    write_bytes(target, with_declared_io(converted, original).SerializeToString())
    return target
