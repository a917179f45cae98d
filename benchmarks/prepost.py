"""Pre- plus post-processing of helpers against insightface's, side by side.

All pipelines see the same image, the same model outputs (one ONNX Runtime
run, shared) and the same thresholds; only the Python around inference is
timed, the measurements taking turns in blocks so that drift on a shared
machine hits them alike. Every case is built and warmed up (allocator, caches)
before the first one is timed, so the first case pays no process warm-up.
The references: insightface 2.x's own `model_zoo.SCRFD.detect` at one size
(when `insightface` is installed, its version printed), and the line-for-line
re-implementation in scrfd_reference.py, split into pre and post. The images
are real photos of several sizes plus 640x480, 1280x720 and 1920x1080 frames
made from them. Prints medians and the ratios; run from the repository root:

    python benchmarks/prepost.py [--model M] [--image I ...] [--repeat N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from insightface_reference import insightface_missing, insightface_scrfd, insightface_version
from scrfd_reference import ReferenceSCRFD

from helpers.detector import Detector, postprocess
from helpers.images import read_image
from helpers.models import resolve
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.photos import FALLBACK, PHOTOS, found_photos, frame_source, photo_dir
from helpers.samples import sample_path

SAMPLES = ["astronaut.png", "crowd48.png", "large_face.png"]
FRAMES = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
STEPS = ("reference_pre", "reference_post", "ours_pre", "ours_post")
INSIGHTFACE = "insightface"  # insightface 2.x's detect(), pre+post in one (inference replayed)


def warm_up(cases: list[dict[str, Callable[[], object]]], calls: int = 10) -> None:
    """Run every step of every case `calls` times before anything is timed.

    The first case timed otherwise pays the process's warm-up (allocator growth, first-use
    caches): 7.2 ms for the reference's first 640x480 case against 0.9 ms for the same frame
    timed after another case.
    """
    for steps in cases:
        for fn in steps.values():
            for _ in range(calls):
                fn()


def medians_in_turns(fns: dict[str, Callable[[], object]], repeat: int, block: int = 10) -> dict[str, float]:
    """Median ms of each function over `repeat` calls, taken in turns of `block` consecutive calls.

    Consecutive calls keep each function in its steady state (as in a loop over frames); taking
    turns spreads the drift of a shared machine over all of them alike. Each function is warmed
    up by one block first.
    """
    warm_up([fns], block)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(-(-repeat // block)):
        for name, fn in fns.items():
            for _ in range(block):
                t = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t) * 1e3)
    return {name: statistics.median(v) for name, v in samples.items()}


def source_image() -> np.ndarray:
    """The photo the synthetic frames are made from (the crowd sample where it is absent)."""
    name = frame_source()
    return read_image(sample_path(name) if name == FALLBACK else photo_dir() / name)


def images_line() -> str:
    """Which images default_images() and source_image() give here: the photos may be missing."""
    found = [p.name for p in found_photos()]
    photos = f"photos {', '.join(found)} from {photo_dir()}" if found else f"no photos ({', '.join(PHOTOS)})"
    return f"images: {photos}; samples {', '.join(SAMPLES)}; frames made from {frame_source()}"


def default_images() -> dict[str, np.ndarray]:
    """name -> BGR image: the shared photos found, the project's samples, and the synthetic frames."""
    images = {path.name: read_image(path) for path in found_photos()}
    images.update({name: read_image(sample_path(name)) for name in SAMPLES})
    source = source_image()
    for label, (w, h) in FRAMES.items():
        images[f"frame {label}"] = cv2.resize(source, (w, h))
    return images


class Case(NamedTuple):  # not a dataclass: notebooks load this file outside sys.modules
    """One image's CPU pipelines, ready to time: the reference's and ours, on shared outputs."""

    size: tuple[int, int]
    faces: int
    steps: dict[str, Callable[[], object]]  # the STEPS, in order
    outputs: dict[str, np.ndarray]  # one ONNX Runtime run on the letterboxed image, by name
    backend: OnnxRuntimeBackend


def case(model: Path, name: str, image: np.ndarray, size: tuple[int, int]) -> Case:
    """Both pipelines on `image`, checked to agree (same blob, same face count) before timing."""
    ref = ReferenceSCRFD(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]))
    size = ref.input_size or size
    det = Detector(OnnxRuntimeBackend(model, ["CPUExecutionProvider"]), size)
    canvas, det_scale = ref.preprocess(image, size)
    net_outs = ref.session.run(ref.output_names, {ref.input_name: ref.blob(canvas, size)})
    named = dict(zip(ref.output_names, net_outs, strict=True))
    blob, box = det._prep(image, size)
    ref_blob = ref.blob(canvas, size)

    def ref_pre():
        c, _ = ref.preprocess(image, size)
        return ref.blob(c, size)

    def ref_post():
        return ref.postprocess(*ref.decode(net_outs, size[1], size[0], ref.det_thresh), det_scale)

    def ours_pre():
        return det._prep(image, size)

    def ours_post():
        return postprocess(named, det.layout, box, det.score_threshold, det.nms_threshold)[0]

    ref_faces, ours_faces = len(ref_post()[0]), len(ours_post())
    if ref_faces != ours_faces or not np.array_equal(ref_blob, blob):
        raise SystemExit(f"{name}: results differ: reference {ref_faces} faces, ours {ours_faces}")
    steps = dict(zip(STEPS, (ref_pre, ref_post, ours_pre, ours_post), strict=True))
    if not insightface_missing():
        real = insightface_scrfd(ref.session, ref.det_thresh, ref.nms_thresh)
        steps[INSIGHTFACE] = lambda: real.detect(image, input_size=size)
        real_faces = len(steps[INSIGHTFACE]()[0])
        if real_faces != ours_faces:
            raise SystemExit(f"{name}: results differ: insightface {real_faces} faces, ours {ours_faces}")
    return Case(size, ours_faces, steps, named, det.backend)


def measure(model: Path, name: str, image: np.ndarray, c: Case, repeat: int) -> dict:
    """Medians and ratios of one case (already warmed up with the others)."""
    t = medians_in_turns(c.steps, repeat)
    ref_total, ours_total = t["reference_pre"] + t["reference_post"], t["ours_pre"] + t["ours_post"]
    row = {
        "model": model.name,
        "image": name,
        "image_size": list(image.shape[1::-1]),
        "input_size": list(c.size),
        "faces": c.faces,
        "median_ms": {k: round(v, 3) for k, v in t.items()},
        "pre_ratio": round(t["reference_pre"] / t["ours_pre"], 2),
        "post_ratio": round(t["reference_post"] / t["ours_post"], 2),
        "prepost_ratio": round(ref_total / ours_total, 2),
    }
    if INSIGHTFACE in t:
        row["insightface_ratio"] = round(t[INSIGHTFACE] / ours_total, 2)
    return row


def print_table(rows: list[dict]) -> None:
    real = all("insightface_ratio" in r for r in rows)
    print(
        f"{'image':<22}{'size':>11}{'faces':>6}{'ref pre':>9}{'ref post':>9}{'our pre':>9}{'our post':>9}"
        f"{'pre x':>7}{'post x':>7}{'pre+post x':>11}" + (f"{'insightface':>12}{'x':>6}" if real else "")
    )
    for r in rows:
        m, (w, h) = r["median_ms"], r["image_size"]
        print(
            f"{r['image']:<22}{f'{w}x{h}':>11}{r['faces']:>6}{m['reference_pre']:>9.3f}"
            f"{m['reference_post']:>9.3f}{m['ours_pre']:>9.3f}{m['ours_post']:>9.3f}"
            f"{r['pre_ratio']:>7.2f}{r['post_ratio']:>7.2f}{r['prepost_ratio']:>11.2f}"
            + (f"{m[INSIGHTFACE]:>12.3f}{r['insightface_ratio']:>6.2f}" if real else "")
        )


def reference_line() -> str:
    """Which references were timed, insightface's version included, or how to add it."""
    missing = insightface_missing()
    if missing:
        return f"reference: scrfd_reference.py only; {missing}"
    real = f"insightface {insightface_version()} model_zoo.SCRFD.detect (one size)"
    return f"references: {real} and scrfd_reference.py"


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def frame_parser(doc: str, repeat: int) -> argparse.ArgumentParser:
    """The options the frame benchmarks share: model, input size, repeat count, JSON report."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", help="ONNX model (default: the model folder's default)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("W", "H"))
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--json", help="also write the report here (atomically)")
    return parser


def command() -> str:
    """How this benchmark was started, for its report."""
    return "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])


def publish(report: dict, text: str, path: str | None) -> None:
    """Print the report's text; with `path`, also write its JSON there (atomically)."""
    print(text)
    if path:
        from helpers.atomic import write_text

        write_text(path, json.dumps(report, indent=2) + "\n")


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Min and median pre+post ratio of ordinary photos (<= 640 px, <= 3 faces), crowds (>= 10 faces)."""
    groups = {
        "ordinary photos": [r for r in rows if max(r["image_size"]) <= 640 and r["faces"] <= 3],
        "crowds": [r for r in rows if r["faces"] >= 10],
        "all": rows,
    }
    return {
        label: {
            "min": min(r["prepost_ratio"] for r in group),
            "median": statistics.median(r["prepost_ratio"] for r in group),
        }
        for label, group in groups.items()
        if group
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model (default: the model folder's default)")
    parser.add_argument("--image", action="append", help="image(s) (default: shared photos, samples, frames)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 640), metavar=("W", "H"))
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    model = resolve(args.model)
    images = {Path(p).name: read_image(p) for p in args.image} if args.image else default_images()
    if not args.image:
        print(images_line())
    size = (args.size[0], args.size[1])
    cases = {name: case(model, name, img, size) for name, img in images.items()}
    warm_up([c.steps for c in cases.values()])
    rows = [measure(model, name, images[name], c, args.repeat) for name, c in cases.items()]
    print_table(rows)
    cpu = f"{os.cpu_count()} x {cpu_name()}"
    print(
        f"(medians in ms over {args.repeat} runs (blocks of 10 in turn, every case warmed up first), "
        f"{model.name}, {cpu})"
    )
    print(reference_line())
    for label, group in summary(rows).items():
        print(f"pre+post ratio, {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in group.items()))
    if args.json:
        from helpers.atomic import write_text

        report = {
            "results": rows,
            "summary": summary(rows),
            "repeat": args.repeat,
            "cpu": cpu,
            "insightface": insightface_version(),
        }
        write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
