"""Host/device buffers for one execution context, sized from the shapes it reports.

The order matters and is where most SCRFD-on-TensorRT scripts go wrong: set every input
shape, check `infer_shapes()` is empty, read the now concrete shapes from the context (never
the engine's -1 shapes), allocate, and give every I/O tensor its address, checking each
return. Outputs are poisoned with NaN before a run so a tensor TensorRT never wrote shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from helpers.errors import UserError
from helpers.layout import Layout, infer_layout
from helpers.trt.specs import (
    Shape,
    TensorSpec,
    check_in_profile,
    dims_tuple,
    nbytes,
    require_concrete,
    shape_text,
)

if TYPE_CHECKING:
    import tensorrt as trt

    from helpers.cuda.context import CudaContext
    from helpers.cuda.memory import HostDeviceBuffer
    from helpers.cuda.stream import Stream


def match_inputs(specs: list[TensorSpec], arrays: Mapping[str, np.ndarray]) -> dict[str, Shape]:
    """The shape of each engine input from the arrays given, by name; refuses extra or missing."""
    wanted = [s.name for s in specs if s.is_input]
    if sorted(arrays) != sorted(wanted):
        raise UserError(f"the engine takes inputs {wanted}, got {sorted(arrays)}; pass them by name")
    shapes = {}
    for spec in specs:
        if spec.is_input:
            array = arrays[spec.name]
            if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
                raise UserError(f"input {spec.name!r} is {array.dtype}; the engine takes {spec.dtype}")
            shapes[spec.name] = tuple(int(d) for d in array.shape)
            check_in_profile(spec, shapes[spec.name])
    return shapes


def output_layout(specs: list[TensorSpec], shapes: Mapping[str, Shape], width: int, height: int) -> Layout:
    """The SCRFD layout from concrete output shapes, by name (engine order plays no part)."""
    dynamic = any(s.dynamic for s in specs if s.is_input)
    return infer_layout({s.name: shapes[s.name] for s in specs if not s.is_input}, width, height, dynamic)


def unset_inputs_error(names: list[str]) -> UserError:
    return UserError(
        f"TensorRT cannot infer output shapes: inputs {names} are not fully specified; call "
        "set_input_shape for each before allocating"
    )


class IOBuffers:
    """One HostDeviceBuffer per engine I/O tensor, for the input shapes last set.

    `set_shapes` reallocates only when a tensor outgrows its memory (a smaller batch or size
    reuses it), and returns whether any address changed (graphs captured before are stale).
    """

    def __init__(self, context: trt.IExecutionContext, specs: list[TensorSpec], cuda: CudaContext):
        self._context = context
        self.specs = specs
        self._cuda = cuda
        self.buffers: dict[str, HostDeviceBuffer] = {}
        self.shapes: dict[str, Shape] = {}
        self.shape_changes = 0  # how often the context's input shapes changed: graphs go stale

    def set_shapes(self, input_shapes: Mapping[str, Shape]) -> bool:
        if self.shapes and all(self.shapes[name] == shape for name, shape in input_shapes.items()):
            return False  # same input shapes: the context and buffers are already right
        self.shape_changes += 1
        for spec in self.specs:
            if spec.is_input and spec.dynamic:
                shape = input_shapes[spec.name]
                if not self._context.set_input_shape(spec.name, shape):
                    raise UserError(
                        f"set_input_shape({spec.name!r}, {shape_text(shape)}) was refused; "
                        f"the engine profile is {spec.profile}"
                    )
        unset = self._context.infer_shapes()
        if unset:
            raise unset_inputs_error(list(unset))
        shapes = {
            s.name: require_concrete(s.name, dims_tuple(self._context.get_tensor_shape(s.name)))
            for s in self.specs
        }
        if shapes == self.shapes:
            return False
        return self._allocate(shapes)

    def _allocate(self, shapes: dict[str, Shape]) -> bool:
        from helpers.cuda.memory import HostDeviceBuffer

        moved = False
        for spec in self.specs:
            shape = shapes[spec.name]
            nbytes(spec.name, shape, spec.dtype)  # refuses dtypes NumPy cannot hold
            old = self.buffers.get(spec.name)
            if old is not None and old.reshape(shape):
                continue
            if old is not None:
                old.free()
            buffer = HostDeviceBuffer(shape, spec.dtype, self._cuda)
            self.buffers[spec.name] = buffer
            moved = True
            if not self._context.set_tensor_address(spec.name, buffer.device_ptr):
                raise UserError(f"set_tensor_address refused tensor {spec.name!r}: not an I/O tensor")
        self.shapes = shapes
        return moved

    def load(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            np.copyto(self.buffers[name].host, array, casting="same_kind")

    def poison_outputs(self, stream: Stream) -> None:
        """NaN into every output on `stream`, before the copy in: what TensorRT does not write stays NaN."""
        for spec in self.outputs_specs():
            self.buffers[spec.name].poison(stream=stream)

    def outputs_specs(self) -> list[TensorSpec]:
        return [s for s in self.specs if not s.is_input]

    def inputs_specs(self) -> list[TensorSpec]:
        return [s for s in self.specs if s.is_input]

    def addresses(self) -> dict[str, int]:
        return {name: b.device_ptr for name, b in self.buffers.items()}

    def copy_inputs(self, stream: Stream) -> None:
        for spec in self.inputs_specs():
            self.buffers[spec.name].copy_to_device(stream)

    def copy_outputs(self, stream: Stream) -> None:
        for spec in self.outputs_specs():
            self.buffers[spec.name].copy_to_host(stream)

    def read_outputs(self) -> dict[str, np.ndarray]:
        """Copies of the host output buffers (the buffers are reused by the next run)."""
        return {s.name: self.buffers[s.name].host.copy() for s in self.outputs_specs()}

    def layout(self, width: int, height: int) -> Layout:
        return output_layout(self.specs, self.shapes, width, height)

    def free(self) -> None:
        for buffer in self.buffers.values():
            buffer.free()
        self.buffers = {}
        self.shapes = {}
