"""`python -m helpers ...`: the workbook's command line.

Every problem the user can fix ends as one line on stderr and a non-zero
exit status; in a batch the good images are still processed and written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from helpers.detections import Faces
    from helpers.detector import Detector, Timings

SIGPIPE_STATUS = 141  # what a shell reports for a tool ended by a closed pipe (128 + SIGPIPE)
_OPENED: list = []  # TensorRT backends and GPU stages to close (in their CUDA context) before exit


def _size(values: Sequence[int]) -> tuple[int, int]:
    from helpers.detector import check_size

    if len(values) not in (1, 2):
        raise UserError("--input-size takes one number (square) or two (W H)")
    return check_size((values[0], values[-1]))


def _sizes(given: Sequence[Sequence[int]] | None) -> list[tuple[int, int]]:
    """Every --input-size, in order, each once."""
    return list(dict.fromkeys(_size(v) for v in given or ()))


def _size_flag(size: tuple[int, int]) -> str:
    w, h = size
    return f"--input-size {w}" if w == h else f"--input-size {w} {h}"


SMALL_SIZE = (160, 160)  # finds a 112x112 face crop that 640 misses (tests/test_cli.py checks it)


def zero_face_hint(size: tuple[int, int], missed: int) -> str:
    """What to try when a dynamic model found no face at one input size."""
    images = "1 image" if missed == 1 else f"{missed} images"
    if max(size) > max(SMALL_SIZE):
        return (
            f"hint: no face in {images} at {size[0]}x{size[1]}; a face that fills the image can be too large "
            f"for this input size: add a smaller one ({_size_flag(size)} {_size_flag(SMALL_SIZE)}) "
            "or use only a smaller one"
        )
    return (
        f"hint: no face in {images} at {size[0]}x{size[1]}; small faces need a larger input: --input-size 640"
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _unit(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def make_backend(
    kind: str,
    model: Path,
    precision: str = "fp32",
    sizes: Sequence[tuple[int, int]] = (),
    method: str = "v3",
    spell: Callable[[str], str] = "--backend {}".format,
    batch: int = 1,
):
    """The backend the user asked for; `auto` takes TensorRT only when it can really run.

    The engine's profile covers every size in `sizes` and batches of 1 to `batch` images.
    `spell` writes a backend choice the way the user gave it, for the error message."""
    if kind in ("auto", "tensorrt"):
        from helpers.trt.backend import TensorRTBackend, tensorrt_available
        from helpers.trt.build import BuildOptions

        ok, why = tensorrt_available()
        if ok:
            shapes = tuple((1, 3, h, w) for w, h in sizes)
            batches = (1, batch, batch) if batch > 1 else None
            options = BuildOptions(precision=precision, sizes=shapes, batch=batches)
            backend = TensorRTBackend(model, method, options)
            _OPENED.append(backend)
            return backend
        if kind == "tensorrt":
            raise UserError(f"{spell('tensorrt')} is not usable here: {why}; use {spell('onnxruntime')}")
    from helpers.ort_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model)


def cmd_inspect(args: argparse.Namespace) -> int:
    from helpers.models import resolve
    from helpers.onnx_info import format_report, inspect_model

    report = inspect_model(resolve(args.model))
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    return 0


def _annotated_name(out_dir: Path, image: Path, used: set[str]) -> Path:
    name, n = image.name, 1
    while name in used:
        n += 1
        name = f"{image.stem}-{n}{image.suffix}"
    used.add(name)
    return out_dir / name


def _more_lanes(args: argparse.Namespace, backend: Any, first: Detector, n: int) -> list[Detector]:
    """`n` more lanes like `first`: on TensorRT each its own execution context, stream and GPU
    stages on the one engine; on ONNX Runtime the same session (it may run from many threads)."""
    from helpers.detector import Detector
    from helpers.lanes.make import tensorrt_lane
    from helpers.trt.backend import TensorRTBackend

    like: dict[str, Any] = {
        "input_size": first.requested_size,
        "score_threshold": first.score_threshold,
        "nms_threshold": first.nms_threshold,
    }
    if not isinstance(backend, TensorRTBackend):
        return [Detector(backend, **like) for _ in range(n)]
    gpu = first.stages is not None
    # Closed before the first backend, which owns the engine (_OPENED closes last in, first out).
    return [tensorrt_lane(backend.loaded, args.trt_method, gpu, _OPENED, **like) for _ in range(n)]


def cmd_detect(args: argparse.Namespace) -> int:
    from helpers.annotate import annotate
    from helpers.atomic import check_folder, check_writable, write_bytes, write_text
    from helpers.detector import Detector, check_threshold
    from helpers.images import encode_image, read_image
    from helpers.lanes import LanePool
    from helpers.models import resolve

    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: give 1 or more (one lane per image in flight)")
    check_threshold("--score-threshold", args.score_threshold)
    check_threshold("--nms-threshold", args.nms_threshold)
    sizes = _sizes(args.input_size)
    if args.annotate and Path(args.annotate).is_file():
        raise UserError(f"--annotate {args.annotate} is a file; give a directory to write images into")
    if args.annotate:
        check_folder(args.annotate)
    if args.json and args.json != "-":
        check_writable(args.json)
    if args.batch < 1:
        raise UserError(f"--batch {args.batch} must be at least 1 image per run")
    model = resolve(args.model)
    runs = model
    if args.batch > 1:
        from helpers.batch.batchify import batchify

        runs = batchify(model)  # the checked, cached rewrite; the model itself when already batchable
    backend = make_backend(args.backend, runs, sizes=sizes, method=args.trt_method, batch=args.batch)
    from helpers.gpu.stages import stages_for

    stages = stages_for(args.preprocess, backend, graph=args.trt_method == "graph")
    if stages is not None:
        _OPENED.append(stages)  # closed before its backend (last in, first out): graph, buffers
    first = sizes[0] if sizes else None
    detector = Detector(backend, first, args.score_threshold, args.nms_threshold, stages=stages)
    if detector.fixed_size and len(sizes) > 1:
        w, h = detector.fixed_size
        raise UserError(
            f"{model.name} has a static {w}x{h} input, so it cannot run at several sizes; give one "
            "--input-size, or use a dynamic-input export for multi-size detection"
        )
    if detector.size_overridden:
        w, h = detector.input_size
        print(
            f"note: {model.name} has a static {w}x{h} input; using it instead of --input-size",
            file=sys.stderr,
        )
    run_sizes = [detector.fixed_size] if detector.fixed_size else sizes or [detector.input_size]
    log = sys.stderr if args.json == "-" else sys.stdout
    pool = LanePool([detector, *_more_lanes(args, backend, detector, args.workers - 1)])
    chunks = [args.images[i : i + args.batch] for i in range(0, len(args.images), args.batch)]

    def work(lane: Detector, names: list[str]) -> list[tuple[np.ndarray, Faces, Timings] | UserError]:
        """One chunk on one lane, `--batch` images per backend run (a last partial batch at its
        real size: no padding images); an image that cannot be read fails alone."""
        read: list[np.ndarray | UserError] = []
        for name in names:
            try:
                read.append(read_image(name))
            except UserError as exc:
                read.append(exc)
        images = [r for r in read if not isinstance(r, UserError)]
        try:
            if args.batch > 1 and images:
                found = iter(lane.run_batch_sizes(images, run_sizes))
            else:
                found = iter([lane.run_sizes(image, run_sizes) for image in images])
        except UserError as exc:  # the whole run failed: each of its images says so
            return [r if isinstance(r, UserError) else exc for r in read]
        return [r if isinstance(r, UserError) else (r, *next(found)) for r in read]

    results, failed, used, missed = [], [], set[str](), 0
    done_in_order = [d for chunk in pool.map(work, chunks) for d in chunk]
    for name, done in zip(args.images, done_in_order, strict=True):
        try:
            if isinstance(done, UserError):
                raise done
            image, faces, t = done
            if args.annotate:
                out = _annotated_name(Path(args.annotate), Path(name), used)
                suffix = out.suffix.lower() if out.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
                write_bytes(out.with_suffix(suffix), encode_image(annotate(image, faces), suffix))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        missed += not len(faces)
        results.append(
            {
                "image": name,
                "width": image.shape[1],
                "height": image.shape[0],
                "model": str(model),
                "backend": backend.name,
                "input_size": list(run_sizes[0]),
                "input_sizes": [list(s) for s in run_sizes],
                "detections": faces.to_json(),
                "timings_ms": t.to_json(),
            }
        )
        print(
            f"{name}: {plural(len(faces), 'face')}  (pre {t.preprocess:.1f} ms, {backend.name} "
            f"{t.inference:.1f} ms, post {t.postprocess:.1f} ms)",
            file=log,
        )
    if missed and not detector.fixed_size and len(run_sizes) == 1:
        print(zero_face_hint(run_sizes[0], missed), file=sys.stderr)
    if args.json == "-":
        print(json.dumps(results, indent=2))
    elif args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")
    if failed:
        print(
            f"error: {len(failed)} of {plural(len(args.images), 'image')} failed: {', '.join(failed)}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def cmd_batchify(args: argparse.Namespace) -> int:
    from helpers.batch.batchify import batchify, load, plan
    from helpers.models import resolve

    model = resolve(args.model)
    changes = plan(load(model))
    out = batchify(model, args.out)
    if not changes:
        print(f"{model} is batchable as it stands" + (f"; copied to {out}" if args.out else ""))
        return 0
    for change in changes:
        print(f"  {change}")
    print(f"batchable copy: {out}  (each image of a batch checked against its own run with ONNX Runtime)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from helpers import models

    if args.action == "list":
        folder = models.model_dir()
        print(f"model folder: {folder}  (set {models.ENV} to use another)")
        found = models.onnx_in(folder)
        default = models.resolve(None) if found else None
        for path in found:
            target = f" -> {path.readlink()}" if path.is_symlink() else ""
            print(f"  {path.name}{target}{'   (default)' if path == default else ''}")
        if not found:
            print("  (empty: run `python -m helpers models fetch`)")
        print("fetchable: " + ", ".join(models.CATALOGUE))
        return 0
    if args.action == "link":
        if len(args.names) != 1:
            raise UserError("models link takes one folder of SCRFD .onnx files: models link FOLDER")
        linked, kept = models.link(Path(args.names[0]))
        for path in linked:
            print(f"  linked {path} -> {path.readlink()}")
        for path in kept:
            print(f"  kept {path} (a file of its own, not replaced)")
        print(f"later commands find these models in {models.LOCAL_DIR} without {models.ENV}")
        return 0
    names = args.names or [models.DEFAULT_FETCH]
    unknown = [n for n in names if n not in models.CATALOGUE]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; choose from {', '.join(models.CATALOGUE)}")
    for name in names:
        pack = models.CATALOGUE[name]
        print(f"fetching {pack.url} ({pack.zip_bytes / 1e6:.0f} MB) ...", flush=True)
        print(f"  wrote {models.fetch(pack)}")
    return 0


def _compare_side(option: str, spec: str, args: argparse.Namespace):
    """One side's configuration and detector; errors name the option and its keys as the user typed them."""
    from helpers import compare

    try:
        config = compare.Config.parse(spec)
        detector = compare.make_detector(
            config,
            lambda c, m: make_backend(c.backend, m, c.precision, [c.input_size], spell="backend={}".format),
            args.score_threshold,
            args.nms_threshold,
        )
    except UserError as exc:
        raise UserError(f"{option} {spec or '(defaults)'}: {exc}") from None
    return config, detector


def cmd_compare(args: argparse.Namespace) -> int:
    from helpers import compare
    from helpers.atomic import check_writable, write_text
    from helpers.detector import check_threshold
    from helpers.images import read_image

    check_threshold("--score-threshold", args.score_threshold)
    check_threshold("--nms-threshold", args.nms_threshold)
    if args.json:
        check_writable(args.json)
    (a, da), (b, db) = (
        _compare_side(option, spec, args) for option, spec in (("--a", args.a), ("--b", args.b))
    )
    sides = [da, db]
    rows, failed = [], []
    for name in args.images:
        try:
            rows.append(compare.compare_image(name, read_image(name), *sides))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(name)
    print(compare.format_table(a, b, rows))
    if args.json:
        write_text(args.json, json.dumps(compare.to_json(a, b, rows), indent=2) + "\n")
    return 1 if failed else 0


def cmd_build(args: argparse.Namespace) -> int:
    from helpers.models import resolve
    from helpers.trt.build import DEFAULT_CACHE_DIR, BuildOptions, build_engine
    from helpers.trt.specs import parse_shape

    shape = lambda text: parse_shape(text) if text else None  # noqa: E731
    if args.workspace is not None and args.workspace <= 0:
        raise UserError(f"--workspace {args.workspace} MiB must be a positive number of MiB")
    options = BuildOptions(
        precision="fp16" if args.fp16 else "fp32",
        min_shape=shape(args.min),
        opt_shape=shape(args.opt),
        max_shape=shape(args.max),
        sizes=tuple(parse_shape(s) for s in args.size),
        workspace=args.workspace * 2**20 if args.workspace is not None else None,
        opt_level=args.opt_level,
        batch=tuple(args.batch_range) if args.batch_range else None,
    )
    result = build_engine(
        resolve(args.model), options, args.cache_dir or DEFAULT_CACHE_DIR, args.rebuild, not args.no_progress
    )
    print(f"{'cached' if result.cached else 'built'}: {result.entry.plan}  ({result.reason})")
    print(f"manifest: {result.entry.manifest}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from helpers import bench
    from helpers.atomic import check_writable, write_text
    from helpers.detector import Detector
    from helpers.images import read_image
    from helpers.models import resolve
    from helpers.ort_backend import OnnxRuntimeBackend
    from helpers.samples import sample_path

    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} must be at least 1")
    if args.json:
        check_writable(args.json)
    model = resolve(args.model)
    image_name = args.image or sample_path("crowd48.png")
    image = read_image(image_name)
    size = _size(args.input_size) if args.input_size else None
    ort_detector = Detector(OnnxRuntimeBackend(model), size)
    w, h = ort_detector.input_size
    run = {"model": str(model), "image": str(image_name), "input": f"{w}x{h}", "repeat": args.repeat}
    report = bench.BenchReport(bench.machine(), run)
    report.pipeline["onnxruntime"] = bench.stage_samples(ort_detector, image, args.repeat)
    bench.gpu_runners(model, ort_detector.input_size, args.repeat, report)
    if "tensorrt" not in report.skipped:
        trt = make_backend("tensorrt", model, sizes=[ort_detector.input_size])
        report.pipeline[trt.name] = bench.stage_samples(Detector(trt, size), image, args.repeat)
    bench.add_ratios(report)
    print(bench.format_report(report))
    if args.json:
        write_text(args.json, json.dumps(asdict(report), indent=2, default=str) + "\n")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.explain is not None:
        from helpers.cuda.explain import explain

        found = explain(args.explain)
        if args.json:
            print(json.dumps([vars(e) for e in found], indent=2))
        for row in [] if args.json else found:
            print(f"{row}\n")
        if not found:
            print(
                "no known pattern in that text; run `python -m helpers doctor` and see notebook 08",
                file=sys.stderr,
            )
        return 0 if found else 1
    from helpers.cuda.doctor import doctor, format_report

    report = doctor()
    print(json.dumps(report, indent=2, default=str) if args.json else format_report(report))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from helpers.lint import lint_paths
    from helpers.lint.report import explain, format_text, to_json

    if args.explain:
        print(explain(args.explain))
        return 0
    if not args.paths:
        raise UserError("lint needs a script, folder or notebook to check, or --explain CODE")
    result = lint_paths(args.paths)
    print(to_json(result) if args.json else format_text(result))
    for line in result.errors:
        print(f"error: {line}", file=sys.stderr)
    return result.status


def cmd_samples(args: argparse.Namespace) -> int:
    from helpers.samples import all_samples

    for path in all_samples():
        print(path)
    return 0


MODEL_HELP = "ONNX file, or a model's name in the model folder (default: the largest detector there)"


def _add_thresholds(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--score-threshold",
        type=_unit,
        default=0.5,
        metavar="S",
        help="keep candidates scoring at least S, 0..1 (default: %(default)s)",
    )
    p.add_argument(
        "--nms-threshold",
        type=_unit,
        default=0.4,
        metavar="IOU",
        help="NMS drops a box overlapping a better one by more than IOU, 0..1 (default: %(default)s)",
    )


def _add_input_size(p: argparse.ArgumentParser, repeatable: bool) -> None:
    more = (
        "; repeat it to detect at several sizes merged by one NMS, e.g. --input-size 640 --input-size 160 "
        "(dynamic-input models)"
        if repeatable
        else ""
    )
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        action="append" if repeatable else "store",
        metavar="N",
        help="network input: N (square) or W H, multiples of 32 (default: 640; a static model: its own)"
        + more,
    )


def _add_count(p: argparse.ArgumentParser, flag: str, default: int, metavar: str, meaning: str) -> None:
    p.add_argument(flag, type=int, default=default, metavar=metavar, help=f"{meaning} (default: %(default)s)")


SCRIPT = "scrfd-workbook"  # the console script pyproject.toml installs


def _prog() -> str:
    """How the user started us: the console script by its name, else `python -m helpers`."""
    return SCRIPT if sys.argv and Path(sys.argv[0]).name == SCRIPT else "python -m helpers"


def build_parser() -> argparse.ArgumentParser:
    from helpers.models import CATALOGUE, DEFAULT_FETCH

    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="declared I/O, op histogram and the SCRFD layout of a model")
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("detect", help="detect faces in images")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format OpenCV reads)")
    p.add_argument("--model", help=MODEL_HELP)
    _add_input_size(p, repeatable=True)
    _add_thresholds(p)
    p.add_argument(
        "--backend",
        choices=("auto", "onnxruntime", "tensorrt"),
        default="auto",
        help="auto takes TensorRT when it can run here, else ONNX Runtime (default: %(default)s)",
    )
    p.add_argument(
        "--trt-method",
        choices=("v3", "v2", "graph"),
        default="v3",
        help="TensorRT execution: execute_async_v3, execute_v2 or a CUDA graph of v3 (default: %(default)s)",
    )
    p.add_argument(
        "--preprocess",
        choices=("auto", "gpu", "cpu"),
        default="auto",
        help="letterbox and decode on the GPU (CuPy, TensorRT backend) or the CPU; auto: the GPU when "
        "usable (default: %(default)s)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="N images per engine run (the model is made batchable first: see batchify); a last partial "
        "batch runs at its real size (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="detect N images (or batches) at once, one lane each (TensorRT: one engine, N execution "
        "contexts and streams); results stay in input order (default: %(default)s)",
    )
    p.add_argument("--json", metavar="PATH", help="write results as JSON (atomically); - for stdout")
    p.add_argument(
        "--annotate", metavar="DIR", help="write the images with boxes and landmarks drawn into DIR"
    )
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser(
        "batchify",
        help="rewrite a model so its batch axis is real: N images per run, each image's rows its own",
    )
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("--out", metavar="PATH", help="write here (default: cached in data/engines/batched/)")
    p.set_defaults(func=cmd_batchify)

    fetchable = ", ".join(f"{name} ({pack.zip_name})" for name, pack in CATALOGUE.items())
    p = sub.add_parser(
        "models",
        help="list the model folder, fetch insightface's detectors, or link a folder of models",
        description=f"list: the model folder and its default model. fetch NAME...: download and verify "
        f"detectors from insightface's v0.7 release: {fetchable}. link FOLDER: symlink FOLDER's .onnx "
        "files into data/models/, where later commands find them without SCRFD_MODEL_DIR.",
    )
    p.add_argument("action", choices=("list", "fetch", "link"), help="what to do (see above)")
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME|FOLDER",
        help=f"fetch: detectors out of {', '.join(CATALOGUE)} (default: {DEFAULT_FETCH}); link: one folder",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("compare", help="two configurations on the same images: tensors and faces")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument(
        "--a",
        default="",
        metavar="KEYS",
        help="side A as model=M,backend=onnxruntime|tensorrt,precision=fp32|fp16,size=N|WxH; "
        "each key optional (default: default model, onnxruntime, fp32, 640)",
    )
    p.add_argument(
        "--b", default="precision=fp16", metavar="KEYS", help="side B, same keys (default: %(default)s)"
    )
    _add_thresholds(p)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON (atomically)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("build", help="build (or reuse from the cache) a TensorRT engine for a model")
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("--fp16", action="store_true", help="half precision (10.x flag, 11.x AutoCast ONNX)")
    p.add_argument("--min", metavar="SHAPE", help="profile min input: 128 or 1x3x128x128 (default: 128)")
    p.add_argument("--opt", metavar="SHAPE", help="profile opt input (default: 640)")
    p.add_argument("--max", metavar="SHAPE", help="profile max input (default: 640 or the largest --size)")
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="SHAPE",
        help="an input size the engine must take; repeatable",
    )
    p.add_argument(
        "--batch-range",
        type=int,
        nargs=3,
        metavar=("MIN", "OPT", "MAX"),
        help="images per run the profile covers, e.g. 1 4 8 (a batchable model: see batchify; "
        "default: the N of --min/--opt/--max, 1)",
    )
    p.add_argument(
        "--workspace", type=int, metavar="MIB", help="builder workspace limit in MiB (default: TensorRT's)"
    )
    _add_count(p, "--opt-level", 3, "0-5", "builder optimisation level")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default: data/engines)")
    p.add_argument("--rebuild", action="store_true", help="build even if the cache has a match")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("bench", help="time every runner and the pipeline side by side; print ratios")
    p.add_argument("image", nargs="?", help="image to time (default: the 48-face sample)")
    p.add_argument("--model", help=MODEL_HELP)
    _add_input_size(p, repeatable=False)
    _add_count(p, "--repeat", 100, "N", "timed iterations per measurement")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON (atomically)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="versions, GPU, current CUDA context; --explain maps errors to fixes")
    p.add_argument("--explain", metavar="TEXT", help="an error message or a whole pasted log to explain")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "lint",
        help="find the seed's TensorRT/pycuda mistakes in your own scripts and notebooks, by line",
        description="Static checks (ast only; your code is never imported or run). Exit 0: clean, "
        "1: findings, 2: a file could not be read or parsed.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help=".py files, .ipynb notebooks or folders")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the lines")
    p.add_argument("--explain", metavar="CODE", help="a rule's cause, fix, chapter and public reports")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("samples", help="generate the project's sample images into data/samples/")
    p.set_defaults(func=cmd_samples)
    return parser


def _quiet_stdout() -> None:
    """The reader of our stdout went away (`| head`): drop what is still buffered, as other tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        status = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return SIGPIPE_STATUS
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system problem the checks above did not foresee
        print(
            f"error: {exc.strerror or exc}: {exc.filename or ''}; check the path and permissions",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        while _OPENED:
            _OPENED.pop().close()
