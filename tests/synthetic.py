"""Tiny SCRFD-shaped ONNX graphs built with onnx.helper, for layouts no real export here has.

Each level is AveragePool(stride) -> 1x1 Conv to A*C channels -> the head's
Transpose/Reshape, so ONNX Runtime produces exactly the shapes a real
export of that layout would, at any input size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = {"score": 1, "bbox": 4, "kps": 10}


def scrfd_like(
    path: Path,
    strides: tuple[int, ...] = (8, 16, 32),
    anchors: int = 2,
    landmarks: bool = True,
    rank: int = 2,
    order: list[int] | None = None,
    extra_outputs: int = 0,
    seed: int = 0,
) -> Path:
    """Write a model whose outputs follow the SCRFD layout; `order` permutes the outputs."""
    rng = np.random.default_rng(seed)
    kinds = ["score", "bbox"] + (["kps"] if landmarks else [])
    nodes, inits, outputs = [], [], []
    for kind in kinds:
        for s in strides:
            c = CHANNELS[kind] * anchors
            name = f"{kind}_{s}"
            w = numpy_helper.from_array(rng.normal(0, 0.5, (c, 3, 1, 1)).astype(np.float32), f"w_{name}")
            inits.append(w)
            nodes.append(
                helper.make_node(
                    "AveragePool", ["input"], [f"p_{name}"], kernel_shape=[s, s], strides=[s, s], ceil_mode=1
                )
            )
            nodes.append(helper.make_node("Conv", [f"p_{name}", w.name], [f"c_{name}"]))
            src = f"c_{name}"
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [src], [f"s_{name}"]))
                src = f"s_{name}"
            if rank == 4:
                nodes.append(helper.make_node("Identity", [src], [name]))
            else:
                shape = numpy_helper.from_array(
                    np.array([-1, CHANNELS[kind]] if rank == 2 else [1, -1, CHANNELS[kind]], np.int64),
                    f"shape_{name}",
                )
                inits.append(shape)
                nodes.append(helper.make_node("Transpose", [src], [f"t_{name}"], perm=[0, 2, 3, 1]))
                nodes.append(helper.make_node("Reshape", [f"t_{name}", shape.name], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    for i in range(extra_outputs):
        nodes.append(helper.make_node("Identity", ["input"], [f"extra_{i}"]))
        outputs.append(helper.make_tensor_value_info(f"extra_{i}", TensorProto.FLOAT, None))
    if order is not None:
        outputs = [outputs[i] for i in order]
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
