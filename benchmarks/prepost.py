"""Pre- plus post-processing of helpers against insightface's reference, side by side.

Both pipelines see the same image, the same model outputs (one ONNX Runtime
run, shared) and the same thresholds; only the Python around inference is
timed. Prints medians and the ratio; run from the repository root:

    python benchmarks/prepost.py [--model M] [--image I] [--repeat N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrfd_reference import ReferenceSCRFD

from helpers.decode import candidates
from helpers.detector import Detector
from helpers.images import read_image
from helpers.models import resolve
from helpers.nms import nms
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.samples import sample_path


def median_ms(fn, repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def measure(model: Path, image_path: Path, size: tuple[int, int], repeat: int) -> dict:
    image = read_image(image_path)
    ref = ReferenceSCRFD(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]))
    size = ref.input_size or size
    det = Detector(OnnxRuntimeBackend(model, ["CPUExecutionProvider"]), size)
    canvas, det_scale = ref.preprocess(image, size)
    net_outs = ref.session.run(ref.output_names, {ref.input_name: ref.blob(canvas, size)})
    named = dict(zip(ref.output_names, net_outs, strict=True))
    blob, box = det._prep(image, size)

    def ref_pre():
        c, _ = ref.preprocess(image, size)
        return ref.blob(c, size)

    def ref_post():
        return ref.postprocess(*ref.decode(net_outs, size[1], size[0], ref.det_thresh), det_scale)

    def ours_pre():
        return det._prep(image, size)

    def ours_post():
        c = candidates(named, det.layout, size, det.score_threshold)
        return c[nms(c.boxes, c.scores, det.nms_threshold)].scaled(box.scale)

    ref_faces, ours_faces = len(ref_post()[0]), len(ours_post())
    if ref_faces != ours_faces or not np.array_equal(ref_pre(), blob):
        raise SystemExit(f"results differ: reference {ref_faces} faces, ours {ours_faces}")
    t = {
        name: median_ms(fn, repeat)
        for name, fn in [
            ("reference_pre", ref_pre),
            ("reference_post", ref_post),
            ("ours_pre", ours_pre),
            ("ours_post", ours_post),
        ]
    }
    ref_total, ours_total = t["reference_pre"] + t["reference_post"], t["ours_pre"] + t["ours_post"]
    return {
        "model": model.name,
        "image": image_path.name,
        "image_size": list(image.shape[1::-1]),
        "input_size": list(size),
        "faces": ours_faces,
        "median_ms": {k: round(v, 3) for k, v in t.items()},
        "pre_ratio": round(t["reference_pre"] / t["ours_pre"], 2),
        "post_ratio": round(t["reference_post"] / t["ours_post"], 2),
        "prepost_ratio": round(ref_total / ours_total, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model (default: the model folder's default)")
    parser.add_argument("--image", action="append", help="image(s) (default: the project's samples)")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    model = resolve(args.model)
    images = (
        [Path(p) for p in args.image]
        if args.image
        else [sample_path("crowd48.png"), sample_path("astronaut.png")]
    )
    rows = [measure(model, img, (640, 640), args.repeat) for img in images]
    print(
        f"{'image':<16}{'faces':>6}{'ref pre':>10}{'ref post':>10}{'our pre':>10}{'our post':>10}"
        f"{'pre x':>8}{'post x':>8}{'pre+post x':>12}"
    )
    for r in rows:
        m = r["median_ms"]
        print(
            f"{r['image']:<16}{r['faces']:>6}{m['reference_pre']:>10.3f}{m['reference_post']:>10.3f}"
            f"{m['ours_pre']:>10.3f}{m['ours_post']:>10.3f}{r['pre_ratio']:>8.2f}{r['post_ratio']:>8.2f}"
            f"{r['prepost_ratio']:>12.2f}"
        )
    cpu = platform.processor() or platform.machine()
    print(f"(medians in ms over {args.repeat} runs, model {model.name}, {cpu})")
    if args.json:
        from helpers.atomic import write_text

        write_text(args.json, json.dumps({"results": rows, "repeat": args.repeat}, indent=2) + "\n")


if __name__ == "__main__":
    main()
