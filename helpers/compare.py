"""Two configurations on the same images: tensor statistics and, above all, faces.

Tensor tolerances say little about a detector (Polygraphy's defaults make
FP16 look broken); what users need to know is whether the faces changed.
Outputs are paired by (kind, stride) from each side's layout, never by name
or position, so different exports of one model compare too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.detections import Faces
from helpers.detector import Detection, Detector
from helpers.errors import UserError

MATCH_IOU = 0.5
BACKENDS = ("onnxruntime", "tensorrt")  # explicit: a silent fallback would mislabel a side


@dataclass(frozen=True)
class Config:
    """One side of a comparison: which model, on which backend, at which precision and size."""

    model: Path
    backend: str = "onnxruntime"
    precision: str = "fp32"
    input_size: tuple[int, int] = (640, 640)

    @classmethod
    def parse(cls, spec: str) -> Config:
        """`model=NAME,backend=onnxruntime,precision=fp16,size=640|640x480`; every key optional."""
        from helpers.detector import check_size
        from helpers.models import resolve

        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("model", "backend", "precision", "size"):
                raise UserError(f"bad configuration part {part!r}; use model=,backend=,precision=,size=")
            fields[key] = value
        if fields.get("backend", "onnxruntime") not in BACKENDS:
            raise UserError(f"backend {fields['backend']!r} is not one of {', '.join(BACKENDS)}")
        size = fields.get("size", "640").lower().split("x")
        if not all(v.isdigit() for v in size) or len(size) > 2:
            raise UserError(f"bad size {fields['size']!r}; use 640 or 640x480")
        return cls(
            resolve(fields.get("model")),
            fields.get("backend", "onnxruntime"),
            fields.get("precision", "fp32"),
            check_size((int(size[0]), int(size[-1]))),
        )

    def label(self) -> str:
        """'scrfd_2.5g/tensorrt/fp32/640x640'; a TensorRT side run by trtemu says so."""
        w, h = self.input_size
        text = f"{self.model.stem}/{self.backend}/{self.precision}/{w}x{h}"
        if self.backend == "tensorrt":
            from helpers.trt.runtime import EMULATOR, is_emulator

            if is_emulator():
                text += f" ({EMULATOR})"
        return text


@dataclass(frozen=True)
class TensorStats:
    kind: str
    stride: int
    max_abs: float
    median_abs: float
    p99_abs: float
    max_rel: float
    median_rel: float
    p99_rel: float


@dataclass(frozen=True)
class FaceParity:
    """How faces of side A are found again on side B (pixel errors over matched faces)."""

    matched: int
    missing: int  # found by A only
    extra: int  # found by B only
    box_error_px: float  # max corner distance over matched faces
    landmark_error_px: float  # max landmark distance over matched faces
    score_delta: float  # max |score A - score B|
    per_stride: dict[int, dict[str, float]] = field(default_factory=dict)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain IoU matrix (continuous areas) between two sets of x1, y1, x2, y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_faces(a: Faces, b: Faces, min_iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest IoU first."""
    if not len(a) or not len(b):
        return []
    iou = box_iou(a.boxes.astype(np.float64), b.boxes.astype(np.float64))
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            pairs.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return pairs


def _errors(a: Faces, b: Faces, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ia, ib = np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], int)
    corners = np.linalg.norm((a.boxes[ia] - b.boxes[ib]).reshape(-1, 2, 2), axis=2).max(axis=1)
    if a.landmarks is None or b.landmarks is None:
        marks = np.zeros(len(pairs))
    else:
        marks = np.linalg.norm(a.landmarks[ia] - b.landmarks[ib], axis=2).max(axis=1)
    return corners, marks, np.abs(a.scores[ia] - b.scores[ib])


def face_parity(a: Faces, b: Faces) -> FaceParity:
    pairs = match_faces(a, b)
    if not pairs:
        return FaceParity(0, len(a), len(b), 0.0, 0.0, 0.0)
    corners, marks, scores = _errors(a, b, pairs)
    strides = np.array([a.stride[i] for i, _ in pairs])
    per_stride = {
        int(s): {
            "matched": int((strides == s).sum()),
            "box_error_px": float(corners[strides == s].max()),
            "landmark_error_px": float(marks[strides == s].max()),
        }
        for s in np.unique(strides)
    }
    return FaceParity(
        len(pairs),
        len(a) - len(pairs),
        len(b) - len(pairs),
        float(corners.max()),
        float(marks.max()),
        float(scores.max()),
        per_stride,
    )


def tensor_stats(a: Detection, b: Detection, da: Detector, db: Detector) -> list[TensorStats]:
    """Element-wise errors of each (kind, stride) output; empty when the shapes differ."""
    stats = []
    for kind in ("score", "bbox", "kps"):
        if kind not in da.layout.outputs or kind not in db.layout.outputs:
            continue
        for stride in da.layout.strides:
            if stride not in db.layout.outputs[kind]:
                continue
            x = da.layout.as_rows(a.outputs[da.layout.name(kind, stride)]).astype(np.float64)
            y = db.layout.as_rows(b.outputs[db.layout.name(kind, stride)]).astype(np.float64)
            if x.shape != y.shape:
                return []
            err = np.abs(x - y)
            rel = err / np.maximum(np.abs(x), 1e-6)
            q = np.percentile
            stats.append(
                TensorStats(
                    kind,
                    stride,
                    float(err.max()),
                    float(np.median(err)),
                    float(q(err, 99)),
                    float(rel.max()),
                    float(np.median(rel)),
                    float(q(rel, 99)),
                )
            )
    return stats


def make_detector(config: Config, backend_factory, score: float, nms: float) -> Detector:
    """A detector for one side; fp16 goes through an fp16 ONNX copy on ONNX Runtime."""
    from helpers.precision import PRECISIONS, fp16_model

    if config.precision not in PRECISIONS:
        raise UserError(f"precision {config.precision!r} is not one of {', '.join(PRECISIONS)}")
    model = config.model
    if config.precision == "fp16" and config.backend == "onnxruntime":
        model = fp16_model(model)
    return Detector(backend_factory(config, model), config.input_size, score, nms)


@dataclass
class ImageComparison:
    image: str
    faces_a: int
    faces_b: int
    parity: FaceParity
    tensors: list[TensorStats]


def compare_image(image_name: str, image: np.ndarray, da: Detector, db: Detector) -> ImageComparison:
    ra, rb = da.run(image), db.run(image)
    return ImageComparison(
        image_name,
        len(ra.faces),
        len(rb.faces),
        face_parity(ra.faces, rb.faces),
        tensor_stats(ra, rb, da, db),
    )


def verdict(parity: FaceParity, box_tol_px: float = 2.0) -> str:
    if parity.missing or parity.extra:
        return "DIFFERENT FACES"
    return "same faces" if parity.box_error_px <= box_tol_px else "same faces, boxes moved"


def cpu_fp16_note(*configs: Config) -> str | None:
    """Why an fp16 verdict from ONNX Runtime says nothing about FP16 kernels (see helpers.precision)."""
    from helpers.precision import CPU_FP16_NOTE

    cpu_fp16 = any(c.precision == "fp16" and c.backend == "onnxruntime" for c in configs)
    return CPU_FP16_NOTE if cpu_fp16 else None


def format_table(a: Config, b: Config, rows: list[ImageComparison]) -> str:
    note = cpu_fp16_note(a, b)
    lines = [
        f"A = {a.label()}",
        f"B = {b.label()}",
        *([f"note: {note}"] if note else []),
        "",
        f"{'image':<22}{'A':>4}{'B':>4}{'match':>6}{'miss':>5}{'extra':>6}{'box px':>8}"
        f"{'lmk px':>8}{'score d':>9}  verdict",
    ]
    for r in rows:
        p = r.parity
        lines.append(
            f"{Path(r.image).name[:21]:<22}{r.faces_a:>4}{r.faces_b:>4}{p.matched:>6}{p.missing:>5}"
            f"{p.extra:>6}{p.box_error_px:>8.2f}{p.landmark_error_px:>8.2f}{p.score_delta:>9.4f}"
            f"  {verdict(p)}"
        )
    for r in rows:
        if r.tensors:
            lines += [
                "",
                f"tensors of {Path(r.image).name} (abs: max / median / p99; rel: max / median / p99)",
            ]
            lines += [
                f"  {t.kind:<5} s{t.stride:<4} {t.max_abs:9.2e} {t.median_abs:9.2e} {t.p99_abs:9.2e}"
                f"   {t.max_rel:9.2e} {t.median_rel:9.2e} {t.p99_rel:9.2e}"
                for t in r.tensors
            ]
    return "\n".join(lines)


def to_json(a: Config, b: Config, rows: list[ImageComparison]) -> dict:
    from dataclasses import asdict

    return {
        "a": {**asdict(a), "model": str(a.model), "label": a.label()},
        "b": {**asdict(b), "model": str(b.model), "label": b.label()},
        "note": cpu_fp16_note(a, b),
        "images": [
            {
                "image": r.image,
                "faces_a": r.faces_a,
                "faces_b": r.faces_b,
                "verdict": verdict(r.parity),
                "faces": asdict(r.parity),
                "tensors": [asdict(t) for t in r.tensors],
            }
            for r in rows
        ],
    }
