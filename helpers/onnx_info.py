"""What an ONNX file declares, next to what it really produces.

Declared shapes come from the graph; the SCRFD layout comes from one real
run, because some exports declare 640x640 row counts for a dynamic input.
The op histogram matters for TensorRT: Transpose/Reshape become the
reformat (cuTENSOR permutation) layers named in the classic error message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from helpers.backend import TensorInfo, static_size
from helpers.batch.batchify import plan
from helpers.detector import probe_shapes
from helpers.errors import UserError
from helpers.layout import Layout, infer_layout
from helpers.ort_backend import OnnxRuntimeBackend


@dataclass(frozen=True)
class ModelReport:
    path: Path
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    producer: str
    ops: dict[str, int]
    layout: Layout
    real_shapes: dict[str, tuple[int, ...]]
    batch_changes: list[str]  # what batchify would change; empty: batchable as it stands
    batch_refusal: str | None = None  # why batchify cannot rewrite it

    def to_json(self) -> dict:
        return {
            "model": str(self.path),
            "inputs": [i.to_json() for i in self.inputs],
            "outputs": [o.to_json() for o in self.outputs],
            "opset": self.opset,
            "producer": self.producer,
            "ops": self.ops,
            "layout": self.layout.to_json(),
            "real_output_shapes": {k: list(v) for k, v in self.real_shapes.items()},
            "batch": {
                "batchable": not self.batch_changes and self.batch_refusal is None,
                "rewrite": self.batch_changes,
                "cannot_rewrite": self.batch_refusal,
            },
        }

    def batch_line(self) -> str:
        if self.batch_refusal:
            return f"batch    not batchable: {self.batch_refusal}"
        if not self.batch_changes:
            return "batch    batchable as it stands (dynamic batch, every head keeps it first)"
        shown = "; ".join(self.batch_changes[:3]) + (" ..." if len(self.batch_changes) > 3 else "")
        count = len(self.batch_changes)
        return f"batch    not batchable as it stands; `batchify` makes {count} changes: {shown}"


def _load(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UserError(
            f"cannot read {path} as ONNX ({type(exc).__name__}); check it is a complete .onnx file"
        ) from None


# Not square and not 640x640, so a dynamic export's declared 640x640 row counts show as wrong.
PROBE_SIZE = (640, 480)


def inspect_model(path: str | Path, size: tuple[int, int] = PROBE_SIZE) -> ModelReport:
    """Declared graph facts plus the layout read off one real run at `size` (dynamic inputs)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model {path} does not exist or is not a file; check the path")
    model = _load(path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    ops = dict(sorted(Counter(n.op_type for n in model.graph.node).items(), key=lambda kv: (-kv[1], kv[0])))
    backend = OnnxRuntimeBackend(path)
    fixed = static_size(backend.inputs[0])
    run_size = fixed or size
    real = probe_shapes(backend, run_size)
    layout = infer_layout(real, run_size[0], run_size[1], fixed is None)
    try:
        changes, refusal = [str(c) for c in plan(model)], None
    except UserError as exc:
        changes, refusal = [], str(exc)
    producer = model.producer_name or ""
    return ModelReport(
        path, backend.inputs, backend.outputs, opset, producer, ops, layout, real, changes, refusal
    )


def format_report(r: ModelReport) -> str:
    """The human-readable form of `inspect`: declared vs real shapes and the layout table."""
    lines = [f"model    {r.path}", f"opset    {r.opset}   producer {r.producer or '?'}"]
    lines += [f"input    {i.name} {list(i.shape)} {i.dtype}" for i in r.inputs]
    lines.append("outputs  (declared -> real at the probe size)")
    for o in r.outputs:
        real = list(r.real_shapes[o.name])
        flag = (
            ""
            if list(o.shape) == real or any(isinstance(d, str) for d in o.shape)
            else "   <- declared shape is wrong"
        )
        lines.append(f"  {o.name:<12} {list(o.shape)!s:<18} -> {real!s:<18}{flag}")
    lay = r.layout
    lines.append(
        f"layout   strides {list(lay.strides)}, {lay.anchors} anchors/location, landmarks "
        f"{'yes' if lay.landmarks else 'no'}, {'batched' if lay.batched else 'unbatched'}"
        f"{' NCHW maps' if lay.nchw else ''}, input {'dynamic' if lay.dynamic_input else 'static'}"
    )
    kinds = [k for k in ("score", "bbox", "kps") if k in lay.outputs]
    lines.append("  stride  " + "".join(f"{k:<12}" for k in kinds))
    for s in lay.strides:
        lines.append(f"  {s:<6}  " + "".join(f"{lay.outputs[k][s]:<12}" for k in kinds))
    lines.append(r.batch_line())
    top = ", ".join(f"{k} {v}" for k, v in list(r.ops.items())[:8])
    lines.append(f"ops      {sum(r.ops.values())} nodes: {top}")
    lines.append(
        f"         Transpose {r.ops.get('Transpose', 0)}, Reshape {r.ops.get('Reshape', 0)} "
        "(each may become a TensorRT reformat/permutation layer)"
    )
    return "\n".join(lines)
