"""What an engine's I/O tensors are, and the shape arithmetic around them.

An engine reports every runtime dimension as -1, so buffers are never sized from it; the
pure helpers here turn engine facts into checked, concrete numbers and one-line errors.
`specs_from_engine` is the only function that touches TensorRT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from helpers.backend import TensorInfo
from helpers.errors import UserError

if TYPE_CHECKING:
    import tensorrt as trt

Shape = tuple[int, ...]

# TensorRT DataType names -> NumPy dtype names; the last three have no NumPy type.
_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
    "BF16": "bfloat16",
    "FP8": "float8",
    "INT4": "int4",
}
# SCRFD's coarsest stride in the 3-level exports: input sides must be multiples of it.
SIDE_MULTIPLE = 32
DEFAULT_MIN_SIDE = 128  # insightface's small scale for large faces
DEFAULT_OPT_SIDE = 640  # the size SCRFD was trained and is usually run at


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class Profile:
    """One optimization profile for an input: every runtime shape must lie in [min, max]."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        ranks = {len(self.min), len(self.opt), len(self.max)}
        if len(ranks) != 1:
            raise UserError(f"profile {self} mixes ranks; give min, opt and max as NxCxHxW")
        for lo, mid, hi in zip(self.min, self.opt, self.max, strict=True):
            if not 0 < lo <= mid <= hi:
                raise UserError(
                    f"profile min {shape_text(self.min)}, opt {shape_text(self.opt)}, "
                    f"max {shape_text(self.max)} is not ordered min <= opt <= max in every dimension"
                )

    def contains(self, shape: Shape) -> bool:
        return len(shape) == len(self.min) and all(
            lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max, strict=True)
        )

    def to_json(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[int]]) -> Profile:
        return cls(tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))

    def __str__(self) -> str:
        return f"[{shape_text(self.min)} .. {shape_text(self.max)}], opt {shape_text(self.opt)}"


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor as the engine declares it (-1 marks a runtime dimension)."""

    name: str
    index: int
    is_input: bool
    dtype: str
    shape: Shape
    profile: Profile | None = None  # inputs of dynamic engines only

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)

    def info(self) -> TensorInfo:
        """The backend-neutral view; a dynamic input dim reads 'lo..hi' from its profile."""
        dims: list[int | str] = []
        for axis, d in enumerate(self.shape):
            if d >= 0:
                dims.append(d)
            elif self.profile is not None:
                dims.append(f"{self.profile.min[axis]}..{self.profile.max[axis]}")
            else:
                dims.append("?")
        return TensorInfo(self.name, tuple(dims), self.dtype)


def dtype_name(trt_name: str) -> str:
    """NumPy dtype name for a TensorRT DataType name ('FLOAT' -> 'float32')."""
    try:
        return _DTYPES[trt_name]
    except KeyError:
        raise UserError(f"TensorRT data type {trt_name} is not supported by this workbook") from None


def require_concrete(name: str, shape: Sequence[int]) -> Shape:
    """The shape as a tuple, or a UserError when a dimension is still unknown (-1)."""
    if any(d < 0 for d in shape):
        raise UserError(
            f"tensor {name!r} has shape {shape_text(shape)} with unknown (-1) dimensions; set every "
            "input shape (set_input_shape) before sizing buffers, never size from engine shapes"
        )
    return tuple(int(d) for d in shape)


def nbytes(name: str, shape: Sequence[int], dtype: str) -> int:
    """Bytes a buffer for this tensor needs; refuses -1 dims and dtypes NumPy cannot hold."""
    concrete = require_concrete(name, shape)
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        raise UserError(
            f"tensor {name!r} is {dtype}, which NumPy cannot hold; build with float32 I/O "
            "(AutoCast keep_io_types=True)"
        ) from None
    return int(np.prod(concrete, dtype=np.int64)) * itemsize


def ordered(specs: Iterable[TensorSpec]) -> list[TensorSpec]:
    """Specs in engine I/O index order, checked to be exactly 0..n-1."""
    result = sorted(specs, key=lambda s: s.index)
    if [s.index for s in result] != list(range(len(result))):
        raise ValueError(f"engine I/O indices {[s.index for s in result]} are not 0..n-1")
    return result


def execute_v2_bindings(specs: Iterable[TensorSpec], addresses: Mapping[str, int]) -> list[int]:
    """The address list `execute_v2` wants: element i belongs to engine I/O tensor i."""
    bindings = []
    for spec in ordered(specs):
        address = addresses.get(spec.name, 0)
        if not address:
            raise UserError(
                f"no device address for tensor {spec.name!r}; allocate buffers for every engine "
                "input and output before execute_v2"
            )
        bindings.append(address)
    return bindings


def parse_shape(text: str) -> Shape:
    """A CLI shape: '640' (a square 1x3x640x640) or NxCxHxW as trtexec writes it."""
    try:
        dims = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) == 1:
        dims = (1, 3, dims[0], dims[0])
    if len(dims) != 4 or min(dims) <= 0:
        raise UserError(f"cannot read shape {text!r}; give a side such as 640 or NxCxHxW such as 1x3x480x640")
    return dims


def check_side_multiple(shape: Shape) -> None:
    h, w = shape[2], shape[3]
    if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE:
        raise UserError(
            f"input {shape_text(shape)}: height and width must be multiples of {SIDE_MULTIPLE} "
            "(SCRFD's coarsest stride); round up, e.g. 640 or 672"
        )


def default_profile(
    sizes: Iterable[Shape] = (), opt: Shape | None = None, fixed: tuple[int, int] | None = None
) -> Profile:
    """A profile for a dynamic SCRFD input that covers insightface 2.x's two scales and `sizes`.

    min is 128x128 (or smaller if asked), opt 640x640 unless given, max 640 or the largest
    requested height and width; every requested size must be a multiple of 32. An input whose
    (H, W) is `fixed` (only its batch is dynamic) keeps that size everywhere.
    """
    if fixed is not None:
        side = (1, 3, *fixed)
        return Profile(side, opt or side, side)
    wanted = [*sizes, *([opt] if opt else [])]
    for shape in wanted:
        check_side_multiple(shape)
    lo_h = min([DEFAULT_MIN_SIDE, *(s[2] for s in wanted)])
    lo_w = min([DEFAULT_MIN_SIDE, *(s[3] for s in wanted)])
    hi_h = max([DEFAULT_OPT_SIDE, *(s[2] for s in wanted)])
    hi_w = max([DEFAULT_OPT_SIDE, *(s[3] for s in wanted)])
    return Profile((1, 3, lo_h, lo_w), opt or (1, 3, DEFAULT_OPT_SIDE, DEFAULT_OPT_SIDE), (1, 3, hi_h, hi_w))


def check_profile_fits(name: str, network_shape: Sequence[int | str], profile: Profile) -> None:
    """A profile must keep the network's fixed dims (batch, channels) and its rank."""
    if len(network_shape) != len(profile.min):
        raise UserError(
            f"input {name!r} has rank {len(network_shape)} but the profile is {shape_text(profile.min)}"
        )
    for axis, d in enumerate(network_shape):
        if isinstance(d, int) and d > 0 and {profile.min[axis], profile.opt[axis], profile.max[axis]} != {d}:
            raise UserError(
                f"input {name!r} has fixed size {d} on axis {axis}, but the profile {profile} "
                f"changes it; keep {d} there"
            )


def check_in_profile(spec: TensorSpec, shape: Shape) -> None:
    """Refuse a runtime shape outside the engine's profile, saying how to rebuild."""
    if spec.profile is None:
        if tuple(spec.shape) != shape:
            raise UserError(
                f"input {spec.name!r} is fixed at {shape_text(spec.shape)}, got {shape_text(shape)}; "
                "letterbox to that size or build from a dynamic ONNX"
            )
        return
    if not spec.profile.contains(shape):
        raise UserError(
            f"input {spec.name!r} shape {shape_text(shape)} is outside the engine profile "
            f"{spec.profile}; rebuild with --max {shape_text(shape)} (python -m helpers build)"
        )


def specs_from_engine(engine: trt.ICudaEngine) -> list[TensorSpec]:
    """Read every I/O tensor of an engine, in engine index order (profile 0 for inputs)."""
    import tensorrt as trt

    specs = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = dims_tuple(engine.get_tensor_shape(name))
        profile = None
        if is_input and any(d < 0 for d in shape):
            lo, mid, hi = (dims_tuple(d) for d in engine.get_tensor_profile_shape(name, 0))
            profile = Profile(lo, mid, hi)
        dtype = dtype_name(engine.get_tensor_dtype(name).name)
        specs.append(TensorSpec(name, index, is_input, dtype, shape, profile))
    return specs


def dims_tuple(dims: trt.Dims) -> Shape:
    """A TensorRT Dims (indexable, sized) as a tuple of ints."""
    return tuple(int(dims[i]) for i in range(len(dims)))
