"""The GPU stages' arithmetic, checked on the CPU (no CuPy needed).

The letterbox kernel does `helpers.gpu.resize_model`'s integer steps, so the model stands in for
it here: against cv2.resize (+-1 at most, on a small share of pixels) and, through a real model,
for the faces (the parity the GPU tests then check on the GPU). The host halves of the GPU
post-processing (record ordering, greedy scan of the bitmask) are pure NumPy and tested exactly.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from conftest import shared_image
from scrfd_reference import ReferenceSCRFD
from test_decode_nms import LAYOUT, blank_outputs
from test_parity import IMAGES, SAMPLES, assert_same_faces

from helpers.backend import DeviceTensor
from helpers.decode import candidates
from helpers.detector import Detector, postprocess
from helpers.gpu.kernels import RECORD
from helpers.gpu.postprocess import faces_from_records, greedy_scan, level_table
from helpers.gpu.resize_model import resize
from helpers.images import read_image
from helpers.letterbox import LUT, fit, pad
from helpers.nms import _areas, _iou_against, nms
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


def load(name: str) -> np.ndarray:
    return read_image(shared_image(name) if name in IMAGES else sample_path(name))


def model_blob(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The canvas the GPU letterbox writes: the model's resize, then the CPU path's normalisation."""
    box = fit(image.shape[:2], size)
    blob = np.empty((1, 3, size[1], size[0]), np.float32)
    pad(blob, box.new_width, box.new_height)
    resized = resize(image, box.new_width, box.new_height)
    blob[0, :, : box.new_height, : box.new_width] = LUT[resized[..., ::-1].transpose(2, 0, 1)]
    return blob, box.scale


FRAMES = [
    ((480, 640), (640, 640)),
    ((1080, 1920), (640, 640)),
    ((720, 1280), (640, 480)),
    ((37, 2000), (640, 640)),
]


@pytest.mark.parametrize("name", IMAGES + SAMPLES)
@pytest.mark.parametrize("size", [(640, 640), (640, 480)])
def test_resize_model_is_opencv_within_one_level(name, size):
    image = load(name)
    box = fit(image.shape[:2], size)
    ours = resize(image, box.new_width, box.new_height).astype(np.int16)
    diff = np.abs(ours - cv2.resize(image, (box.new_width, box.new_height)))
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99


@pytest.mark.parametrize(("shape", "size"), FRAMES)
def test_resize_model_on_frames_and_extreme_shapes(shape, size):
    image = np.random.default_rng(shape[1]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    box = fit(shape, size)
    ours = resize(image, box.new_width, box.new_height).astype(np.int16)
    diff = np.abs(ours - cv2.resize(image, (box.new_width, box.new_height)))
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99


@pytest.mark.parametrize("name", IMAGES + SAMPLES)
def test_gpu_letterbox_arithmetic_finds_the_same_faces(model_path, name):
    """Faces from the GPU letterbox's exact canvas vs the CPU path: the GPU parity goal."""
    image = load(name)
    det = Detector(OnnxRuntimeBackend(model_path, ["CPUExecutionProvider"]))
    blob, scale = model_blob(image, det.input_size)
    outputs = det.backend.run({det.input_name: blob})
    box = fit(image.shape[:2], det.input_size)
    faces = postprocess(outputs, det.layout, box, det.score_threshold, det.nms_threshold)[0]
    reference = ReferenceSCRFD(ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]))
    ref_det, ref_kps = reference.detect(image, det.input_size)
    assert_same_faces(ref_det, ref_kps, faces)
    assert box.scale == scale


def records_of(faces, image: int = 0) -> np.ndarray:
    """What the decode kernel writes for these candidates of image `image` (one row each)."""
    level = np.searchsorted(np.asarray(LAYOUT.strides), faces.stride).astype(np.float32)
    rows = faces.row.astype(np.float32)
    tag = np.full(len(faces), image, np.float32)
    return np.column_stack(
        [faces.scores, faces.boxes, faces.landmarks.reshape(-1, 10), level, rows, tag]
    ).astype(np.float32)


def test_records_in_any_order_become_each_images_cpu_candidates():
    """A batch's rows, shuffled as the atomics may leave them, split back per image in the CPU
    path's order; an image with no candidates (the second) gets an empty set."""
    rng = np.random.default_rng(3)
    expected = []
    for image in range(3):
        out = blank_outputs(96, 64)
        for name, array in out.items():
            array[...] = rng.normal(0, 2, array.shape)
            if name.startswith("score"):
                array[...] = rng.uniform(0, 0.69 if image == 1 else 1, array.shape)
        expected.append(candidates(out, LAYOUT, (96, 64), 0.7))
    records = np.concatenate([records_of(faces, i) for i, faces in enumerate(expected)])
    assert records.shape[1] == RECORD and len(expected[0]) > 10 and not len(expected[1])
    found = faces_from_records(records[rng.permutation(len(records))], LAYOUT, 3)
    for got, want in zip(found, expected, strict=True):
        for field in ("boxes", "scores", "landmarks", "stride", "row"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def suppression_mask(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """The suppress kernel's bitmask, built with the CPU NMS's own IoU."""
    n = len(boxes)
    idx = np.arange(n)
    over = _iou_against(boxes, _areas(boxes), idx[:, None], idx[None, :]) > threshold
    over &= idx[None, :] > idx[:, None]
    words = -(-n // 64)
    padded = np.zeros((n, words * 64), bool)
    padded[:, :n] = over
    return np.packbits(padded, axis=1, bitorder="little").view("<u8")


@pytest.mark.parametrize("n", [1, 64, 700, 2000])
def test_greedy_scan_of_the_bitmask_is_the_cpu_nms(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 500, (n, 2)).astype(np.float32)
    boxes = np.hstack([xy, xy + rng.uniform(5, 80, (n, 2)).astype(np.float32)])
    scores = rng.permutation(n).astype(np.float32) / n
    order = scores.argsort()[::-1]
    keep = order[np.asarray(greedy_scan(suppression_mask(boxes[order], 0.4)), np.int64)]
    np.testing.assert_array_equal(keep, nms(boxes, scores, 0.4))


def test_level_table_points_each_level_at_its_tensors():
    tensors = {
        name: DeviceTensor(1000 + i, (1,), np.dtype(np.float32)) for i, name in enumerate(blank_outputs())
    }
    table = level_table(tensors, LAYOUT, (96, 64))
    starts = 0
    for row, stride in zip(table, LAYOUT.strides, strict=True):
        assert row[0] == tensors[f"score{stride}"].ptr and row[2] == tensors[f"kps{stride}"].ptr
        assert (row[3], row[4], row[5], row[6]) == (
            LAYOUT.rows(stride, 96, 64),
            -(-96 // stride),
            stride,
            starts,
        )
        starts += LAYOUT.rows(stride, 96, 64)


def test_recorded_report_reads_as_a_table_or_is_absent(tmp_path):
    from helpers.gpu.report import format_report, load_report

    assert load_report(tmp_path / "missing.json") is None
    laps = {"gpu": {"total": 0.05}, "gpu_graph": {"total": 0.04}}
    row = {
        "frame": "640x480",
        "faces": {"cpu": 6, "gpu": 6},
        "median_ms": {"reference_pre": 1.5, "reference_post": 0.9, "ours_pre": 0.5, "ours_post": 0.1}
        | {"gpu": 0.2, "gpu_graph": 0.15, "gpu_graph_pinned": 0.1},
        "cuda_event_ms": laps,
        "ratios": {"reference_vs_gpu": 12.0},
    }
    machine = {"cpu": "16 x Some CPU", "gpu": "NVIDIA H200", "cupy": "13.6.0"}
    report = {"results": [row], "machine": machine, "repeat": 300, "model": "m.onnx", "command": "python x"}
    (tmp_path / "r.json").write_text(json.dumps(report))
    text = format_report(load_report(tmp_path / "r.json"))
    assert "NVIDIA H200" in text and "reference_vs_gpu 12.00" in text and "2.400" in text
