"""Rewrite an SCRFD export so its batch axis is real: N images in, each image's rows its own.

insightface's heads transpose `(B, A*C, H, W)` with `perm=[2, 3, 0, 1]` and reshape to
`(-1, C)`, so with a patched batch axis every image's rows come out interleaved; the batched
exports hard-code `[1, -1, C]` and a `Resize` to batch-1 sizes. The rewrite keeps batch first
(`perm=[0, 2, 3, 1]`, `Reshape(0, -1, C)`, the Resize given the equivalent constant scales) and
is checked with ONNX Runtime before it is written: each image of a batch must equal its own run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers.atomic import write_bytes
from helpers.errors import UserError
from helpers.layout import image_outputs
from helpers.models import ENGINES_DIR, sha256

BATCH_AXIS = "batch"
STOCK_PERM = [2, 3, 0, 1]  # (B, A*C, H, W) -> (H, W, B, A*C): images interleave
BATCH_PERM = [0, 2, 3, 1]  # (B, A*C, H, W) -> (B, H, W, A*C): each image's rows together
# Ops a head's output may pass through after its Reshape (SCRFD: the score Sigmoid).
_ELEMENTWISE = {"Sigmoid", "Identity", "Cast", "Relu"}
CHECK_TOLERANCE = 1e-4  # the rewrite's own check; the tests state the difference measured
_CHECK_SIZE = (160, 128)  # a dynamic input is checked at a small, non-square size


@dataclass(frozen=True)
class Change:
    """One edit the rewrite makes, as `inspect` reports it."""

    node: str
    what: str

    def __str__(self) -> str:
        return f"{self.node}: {self.what}"


class _Graph:
    """Producers, consumers and constant values of an ONNX graph, for the rewrite."""

    def __init__(self, model: Any):
        from onnx import numpy_helper

        self.model = model
        graph = model.graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def constant(self, name: str) -> np.ndarray | None:
        return self.values.get(name)

    def chain(self, output: str) -> list[str]:
        """The tensors from a graph output back through elementwise ops to its head node's output."""
        names, node = [output], self.producer.get(output)
        while node is not None and node.op_type in _ELEMENTWISE:
            names.append(node.input[0])
            node = self.producer.get(node.input[0])
        return names

    def head(self, output: str) -> Any | None:
        """The node that shapes a graph output: through elementwise ops back to its producer."""
        node = self.producer.get(output)
        while node is not None and node.op_type in _ELEMENTWISE:
            node = self.producer.get(node.input[0])
        return node


def _attr(node: Any, name: str) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def _fail(why: str) -> UserError:
    return UserError(f"this export cannot be rewritten to a dynamic batch: {why}")


def plan(model: Any) -> list[Change]:
    """What the rewrite would change; empty when the model is batchable as it stands.

    Raises a one-line UserError when a head is not one of the shapes SCRFD exports use."""
    graph = _Graph(model)
    changes = []
    image = _image_input(model)
    first = image.type.tensor_type.shape.dim[0]
    if first.HasField("dim_value") and first.dim_value > 0:
        changes.append(Change(image.name, f"input batch {first.dim_value} -> dynamic '{BATCH_AXIS}'"))
    for output in model.graph.output:
        changes += _head_changes(graph, output.name)
    changes += _resize_changes(graph)
    return changes


def _image_input(model: Any) -> Any:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise _fail(f"it has {len(inputs)} inputs, SCRFD exports have one NCHW image input")
    return inputs[0]


def _head_changes(graph: _Graph, output: str) -> list[Change]:
    node = graph.head(output)
    if node is None or node.op_type != "Reshape":
        return []  # a raw (B, A*C, H, W) map keeps its batch axis
    shape = graph.constant(node.input[1])
    source = graph.producer.get(node.input[0])
    if shape is None or source is None or source.op_type != "Transpose":
        raise _fail(
            f"output {output!r} is reshaped by {node.name!r} from a computed shape or without a Transpose"
        )
    perm = list(_attr(source, "perm") or [])
    target = [int(d) for d in shape]
    if len(graph.consumers.get(source.output[0], [])) != 1:
        raise _fail(f"the head transpose {source.name!r} of output {output!r} feeds more than its reshape")
    changes = []
    if perm == STOCK_PERM and len(target) == 2 and target[0] == -1:
        changes.append(Change(source.name, f"perm {perm} -> {BATCH_PERM}"))
    elif perm != BATCH_PERM:
        raise _fail(f"head transpose {source.name!r} of output {output!r} has perm {perm}")
    if len(target) == 2 or (len(target) == 3 and target[0] == 1):
        changes.append(Change(node.name, f"reshape {target} -> {[0, -1, target[-1]]}"))
    elif len(target) != 3 or target[0] != 0:
        raise _fail(f"head reshape {node.name!r} of output {output!r} has target shape {target}")
    return changes


def _resize_changes(graph: _Graph) -> list[Change]:
    changes = []
    for node in graph.model.graph.node:
        sizes = graph.constant(node.input[3]) if node.op_type == "Resize" and len(node.input) > 3 else None
        if sizes is not None and sizes.size == 4 and int(sizes[0]) == 1:
            changes.append(Change(node.name, f"batch-1 sizes {sizes.tolist()} -> the same constant scales"))
    return changes


def rewrite(model: Any) -> Any:
    """A copy of `model` with a dynamic batch that every head keeps first (unchecked; see batchify)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    plan(model)  # refuse what cannot be rewritten before touching anything
    graph = _Graph(model)
    image = _image_input(model)
    image.type.tensor_type.shape.dim[0].Clear()
    image.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    heads: set[str] = set()  # tensors whose recorded shapes the rewrite changes
    for output in model.graph.output:
        heads.update(graph.chain(output.name))
        node = graph.head(output.name)
        if node is not None and node.op_type == "Reshape":
            source = graph.producer[node.input[0]]
            heads.update(source.output)
            del source.attribute[:]
            source.attribute.append(helper.make_attribute("perm", BATCH_PERM))
            channels = int(graph.constant(node.input[1])[-1])  # type: ignore[index]
            name = f"{node.name}_batch_shape"
            model.graph.initializer.append(
                numpy_helper.from_array(np.array([0, -1, channels], np.int64), name)
            )
            node.input[1] = name
        _declare_batched(output)
    _resize_from_batch(model, graph)
    _batch_value_info(model, heads)
    used = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]  # the replaced reshape targets go
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def _batch_value_info(model: Any, heads: set[str]) -> None:
    """Keep the recorded shapes, batch made dynamic: without them ONNX Runtime plans the
    static export differently and a batch-1 run drifts by ~1e-6 from the original's."""
    kept = []
    for info in model.graph.value_info:
        dims = info.type.tensor_type.shape.dim
        if info.name in heads:
            continue
        if len(dims) == 4 and dims[0].dim_value == 1:  # a feature map: (1, C, H, W)
            dims[0].Clear()
            dims[0].dim_param = BATCH_AXIS
        kept.append(info)
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def _declare_batched(output: Any) -> None:
    """Declare (batch, rows, C) for a head, batch first for a raw map: rows are left unknown."""
    dims = output.type.tensor_type.shape.dim
    rank = len(dims)
    channels = dims[-1].dim_value if rank in (2, 3) else 0
    shape = output.type.tensor_type.shape
    if rank in (2, 3):
        shape.Clear()
        shape.dim.add().dim_param = BATCH_AXIS
        shape.dim.add().dim_param = f"{output.name}_rows"
        shape.dim.add().dim_value = channels
    elif rank == 4:
        dims[0].Clear()
        dims[0].dim_param = BATCH_AXIS


def _resize_from_batch(model: Any, graph: _Graph) -> None:
    """A Resize to constant batch-1 sizes gets the same constant scales instead (batch scale 1).

    Constant scales, unlike sizes computed from the batch, leave ONNX Runtime's layout
    optimisations in place, so a batch-1 run stays bit-identical to the original export."""
    from onnx import numpy_helper, shape_inference

    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in shape_inference.infer_shapes(model).graph.value_info
    }
    for node in model.graph.node:
        sizes = graph.constant(node.input[3]) if node.op_type == "Resize" and len(node.input) > 3 else None
        if sizes is None or sizes.size != 4 or int(sizes[0]) != 1:
            continue
        source = shapes.get(node.input[0], [])
        if len(source) != 4 or min(source) <= 0:
            raise _fail(
                f"{node.name!r} resizes to constant sizes {sizes.tolist()} from a tensor of unknown shape"
            )
        scales = np.array(sizes, np.float32) / np.array(source, np.float32)
        name = f"{node.name}_batch_scales"
        model.graph.initializer.append(numpy_helper.from_array(scales, name))
        inputs = [node.input[0], node.input[1], name]
        del node.input[:]
        node.input.extend(inputs)


def naive_batch(model: Any) -> Any:
    """Only the input's batch axis made dynamic, as a first attempt does: the heads mix images."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    dim = _image_input(model).type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = BATCH_AXIS
    for output in model.graph.output:  # the declared batch-1 shapes would stop ONNX Runtime
        output.type.tensor_type.shape.Clear()
    return model


def load(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and others for a broken file
        raise UserError(
            f"cannot read {path} as ONNX ({type(exc).__name__}); check it is a complete .onnx file"
        ) from None


def max_difference(
    batched: Iterable[dict[str, np.ndarray]], single: Iterable[dict[str, np.ndarray]]
) -> float:
    """Largest |a - b| over every output of image pairs (a batch's image i, its own run)."""
    worst = 0.0
    for a, b in zip(batched, single, strict=True):
        for name, value in b.items():
            worst = max(worst, float(np.max(np.abs(a[name].astype(np.float64) - value))))
    return worst


def split(outputs: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    """One batch run's outputs as `count` per-image dicts of batch-1 views."""
    return [image_outputs(outputs, i) for i in range(count)]


def check(original: bytes, rewritten: bytes, size: tuple[int, int], count: int = 2) -> float:
    """Max difference between each image of a batch run of `rewritten` and the original's own run."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    w, h = size
    images = np.random.default_rng(0).uniform(-1, 1, (count, 3, h, w)).astype(np.float32)
    ref = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"])
    names = [o.name for o in ref.get_outputs()]
    feed = ref.get_inputs()[0].name
    own = [dict(zip(names, ref.run(names, {feed: images[i : i + 1]}), strict=True)) for i in range(count)]
    own = [{k: v.reshape(new_shape(v)) for k, v in o.items()} for o in own]
    batch = dict(zip(names, new.run(names, {feed: images}), strict=True))
    if any(v.shape[0] != count for v in batch.values()):
        raise _fail(
            f"after the rewrite a batch of {count} still gives outputs {[v.shape for v in batch.values()]}"
        )
    return max_difference(split(batch, count), own)


def new_shape(value: np.ndarray) -> tuple[int, ...]:
    """A batch-1 output as the rewritten model shapes it: (N, C) -> (1, N, C)."""
    return (1, *value.shape) if value.ndim == 2 else value.shape


def check_size(model: Any) -> tuple[int, int]:
    dims = _image_input(model).type.tensor_type.shape.dim
    h, w = (d.dim_value for d in dims[2:])
    return (w, h) if w > 0 and h > 0 else _CHECK_SIZE


def batched_path(source: Path, cache_dir: str | Path = ENGINES_DIR) -> Path:
    """Where the batchable copy of `source` is cached: beside the engines, keyed on its bytes and
    on this module's (a changed rewrite must not reuse a copy made by the old one)."""
    key = sha256(source.read_bytes() + Path(__file__).read_bytes())[:16]
    return Path(cache_dir) / "batched" / f"{source.stem}-{key}.onnx"


def batchify(source: str | Path, out: str | Path | None = None, cache_dir: str | Path = ENGINES_DIR) -> Path:
    """The batchable model for `source`: itself when it already is, else the checked, cached rewrite."""
    source = Path(source)
    if not source.is_file():
        raise UserError(f"model {source} does not exist or is not a file; check the path")
    model = load(source)
    if not plan(model) and out is None:
        return source
    target = Path(out) if out else batched_path(source, cache_dir)
    if out is None and target.is_file():
        return target
    data = rewrite(model).SerializeToString()
    worst = check(source.read_bytes(), data, check_size(model))
    if worst > CHECK_TOLERANCE:
        raise _fail(
            f"each image of a batch differs from its own run by up to {worst:.3g} after the rewrite; "
            "the export mixes images somewhere else"
        )
    return write_bytes(target, data)
