"""What both seed examples need but neither is about: an engine from a file, the letterbox, the decode.

Plain TensorRT 10 and numpy, no `helpers`, so the examples read like the scripts users write.
The decode matches insightface's SCRFD (anchor points at cell corners, distances times stride,
greedy NMS with pixel-inclusive areas); it counts faces, which is all the examples report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import tensorrt as trt

SIZE = 640  # the square input both examples run at
STRIDES = (8, 16, 32)
ANCHORS = 2  # SCRFD's anchors per cell


def arguments(doc: str, device: bool = False) -> tuple[argparse.Namespace, np.ndarray]:
    """Both scripts' command line, and the frame every worker runs (one photo, as a stand-in video)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="SCRFD .onnx (built here) or a plan")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2, help="one thread per video stream")
    parser.add_argument("--frames", type=int, default=3, help="frames each worker runs")
    if device:
        parser.add_argument("--device", type=int, default=0, help="CUDA device ordinal")
    args = parser.parse_args()
    image = cv2.imread(str(args.image))
    if image is None:
        raise SystemExit(f"{args.image}: not a readable image")
    return args, image


def load_engine(model: Path, logger: trt.ILogger) -> trt.ICudaEngine:
    """Deserialize a plan, or build one from an ONNX file (profile 1x3x640x640 when dynamic)."""
    runtime = trt.Runtime(logger)
    if model.suffix != ".onnx":
        engine = runtime.deserialize_cuda_engine(model.read_bytes())
    else:
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(model)):
            raise SystemExit(f"{model}: {[str(parser.get_error(i)) for i in range(parser.num_errors)]}")
        config = builder.create_builder_config()
        name = network.get_input(0).name
        if -1 in tuple(network.get_input(0).shape):
            profile = builder.create_optimization_profile()
            profile.set_shape(name, *[(1, 3, SIZE, SIZE)] * 3)
            config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise SystemExit(f"{model}: the engine build failed (see the TensorRT log above)")
        engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise SystemExit(f"{model}: not a usable engine for this TensorRT and GPU")
    return engine


def io_names(engine: trt.ICudaEngine) -> tuple[str, list[str]]:
    """The input's name and the outputs' names, in the engine's I/O order."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    return inputs[0], [n for n in names if n not in inputs]


def letterbox(image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """1x3x640x640 float32 blob (top-left placement, RGB, (x - 127.5) / 128) and the scale used."""
    scale = SIZE / max(image_bgr.shape[:2])
    h, w = round(image_bgr.shape[0] * scale), round(image_bgr.shape[1] * scale)
    canvas = np.zeros((SIZE, SIZE, 3), np.float32)
    canvas[:h, :w] = cv2.resize(image_bgr, (w, h))[:, :, ::-1]
    return ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None].copy(), scale


def anchor_points(stride: int) -> np.ndarray:
    side = SIZE // stride
    ys, xs = np.mgrid[:side, :side]
    return np.repeat(np.stack([xs, ys], -1).reshape(-1, 2) * stride, ANCHORS, axis=0).astype(np.float32)


def count_faces(scores: dict[int, np.ndarray], boxes: dict[int, np.ndarray], threshold: float = 0.5) -> int:
    """Faces after the decode and NMS, from per-stride (rows, 1) scores and (rows, 4) distances."""
    found = []
    for stride in STRIDES:
        keep = scores[stride][:, 0] >= threshold
        points, d = anchor_points(stride)[keep], boxes[stride][keep] * stride
        found.append(np.column_stack([points - d[:, :2], points + d[:, 2:], scores[stride][keep, 0]]))
    return len(nms(np.concatenate(found)))


def nms(dets: np.ndarray, iou: float = 0.4) -> list[int]:
    x1, y1, x2, y2, score = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = list(np.argsort(-score)), []
    while order:
        i, rest = order[0], np.array(order[1:], int)
        keep.append(int(i))
        w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = w * h / (areas[i] + areas[rest] - w * h)
        order = list(rest[overlap <= iou])
    return keep


def by_shape(outputs: dict[str, np.ndarray]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Scores and box distances per stride, told apart by shape: kind from columns, stride from rows."""
    rows = {(SIZE // s) ** 2 * ANCHORS: s for s in STRIDES}
    scores, boxes = {}, {}
    for array in outputs.values():
        flat = array.reshape(-1, array.shape[-1])
        kind = {1: scores, 4: boxes}.get(flat.shape[1])
        if kind is not None and flat.shape[0] in rows:
            kind[rows[flat.shape[0]]] = flat
    if len(scores) != len(STRIDES) or len(boxes) != len(STRIDES):
        raise ValueError(f"cannot map SCRFD outputs by shape: {[a.shape for a in outputs.values()]}")
    return scores, boxes
