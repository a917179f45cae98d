"""`python -m helpers ...`: the workbook's command line.

Every problem the user can fix ends as one line on stderr and a non-zero
exit status; in a batch the good images are still processed and written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from helpers.errors import UserError

_OPENED: list = []  # TensorRT backends to close (in their CUDA context) before the interpreter exits


def _size(values: Sequence[int]) -> tuple[int, int]:
    from helpers.detector import check_size

    if len(values) not in (1, 2):
        raise UserError("--input-size takes one number (square) or two (W H)")
    return check_size((values[0], values[-1]))


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
):
    """The backend the user asked for; `auto` takes TensorRT only when it can really run."""
    if kind in ("auto", "tensorrt"):
        from helpers.trt.backend import TensorRTBackend, tensorrt_available
        from helpers.trt.build import BuildOptions

        ok, why = tensorrt_available()
        if ok:
            shapes = tuple((1, 3, h, w) for w, h in sizes)
            backend = TensorRTBackend(model, method, BuildOptions(precision=precision, sizes=shapes))
            _OPENED.append(backend)
            return backend
        if kind == "tensorrt":
            raise UserError(f"--backend tensorrt is not usable here: {why}; use --backend onnxruntime")
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


def cmd_detect(args: argparse.Namespace) -> int:
    from helpers.annotate import annotate
    from helpers.atomic import check_writable, write_bytes, write_text
    from helpers.detector import Detector, check_threshold
    from helpers.images import encode_image, read_image
    from helpers.models import resolve

    check_threshold("--score-threshold", args.score_threshold)
    check_threshold("--nms-threshold", args.nms_threshold)
    size = _size(args.input_size) if args.input_size else None
    if args.annotate and Path(args.annotate).is_file():
        raise UserError(f"--annotate {args.annotate} is a file; give a directory to write images into")
    if args.annotate:
        check_writable(Path(args.annotate) / "probe.png")
    if args.json and args.json != "-":
        check_writable(args.json)
    model = resolve(args.model)
    backend = make_backend(args.backend, model, sizes=[size] if size else [], method=args.trt_method)
    from helpers.gpu.stages import stages_for

    stages = stages_for(args.preprocess, backend, graph=args.trt_method == "graph")
    detector = Detector(backend, size, args.score_threshold, args.nms_threshold, stages=stages)
    w, h = detector.input_size
    if detector.size_overridden:
        print(
            f"note: {model.name} has a static {w}x{h} input; using it instead of --input-size",
            file=sys.stderr,
        )
    results, failed, used = [], [], set[str]()
    for name in args.images:
        try:
            image = read_image(name)
            found = detector.run(image)
            if args.annotate:
                out = _annotated_name(Path(args.annotate), Path(name), used)
                suffix = out.suffix.lower() if out.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
                write_bytes(out.with_suffix(suffix), encode_image(annotate(image, found.faces), suffix))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        results.append(
            {
                "image": name,
                "width": image.shape[1],
                "height": image.shape[0],
                "model": str(model),
                "backend": backend.name,
                "input_size": [w, h],
                "detections": found.faces.to_json(),
                "timings_ms": found.timings.to_json(),
            }
        )
        t = found.timings
        print(
            f"{name}: {len(found.faces)} faces  (pre {t.preprocess:.1f} ms, {backend.name} "
            f"{t.inference:.1f} ms, post {t.postprocess:.1f} ms)",
            file=sys.stderr if args.json == "-" else sys.stdout,
        )
    if args.json == "-":
        print(json.dumps(results, indent=2))
    elif args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")
    if failed:
        print(
            f"error: {len(failed)} of {len(args.images)} images failed: {', '.join(failed)}", file=sys.stderr
        )
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    from helpers import models

    if args.action == "list":
        print(f"model folder: {models.model_dir()}  (set {models.ENV} to change it)")
        found = models.available()
        default = models.resolve(None) if found else None
        for path in found:
            print(f"  {path.name}{'   (default)' if path == default else ''}")
        if not found:
            print("  (empty: run `python -m helpers models fetch`)")
        print("fetchable: " + ", ".join(models.CATALOGUE))
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


def cmd_compare(args: argparse.Namespace) -> int:
    from helpers import compare
    from helpers.atomic import check_writable, write_text
    from helpers.detector import check_threshold
    from helpers.images import read_image

    check_threshold("--score-threshold", args.score_threshold)
    check_threshold("--nms-threshold", args.nms_threshold)
    if args.json:
        check_writable(args.json)
    a, b = compare.Config.parse(args.a), compare.Config.parse(args.b)
    sides = [
        compare.make_detector(
            c,
            lambda c, m: make_backend(c.backend, m, c.precision, [c.input_size]),
            args.score_threshold,
            args.nms_threshold,
        )
        for c in (a, b)
    ]
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
    image = read_image(args.image or sample_path("crowd48.png"))
    size = _size(args.input_size) if args.input_size else None
    report = bench.BenchReport(bench.machine())
    ort_detector = Detector(OnnxRuntimeBackend(model), size)
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


def cmd_samples(args: argparse.Namespace) -> int:
    from helpers.samples import all_samples

    for path in all_samples():
        print(path)
    return 0


MODEL_HELP = "ONNX file or a name in the model folder (default: best there)"


def _add_thresholds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--score-threshold", type=_unit, default=0.5)
    p.add_argument("--nms-threshold", type=_unit, default=0.4)


def _add_input_size(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input-size", type=int, nargs="+", metavar="N", help="N (square) or W H; multiples of 32"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="declared I/O, op histogram and the SCRFD layout of a model")
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("detect", help="detect faces in images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", help=MODEL_HELP)
    _add_input_size(p)
    _add_thresholds(p)
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    p.add_argument(
        "--trt-method",
        choices=("v3", "v2", "graph"),
        default="v3",
        help="TensorRT execution: execute_async_v3, execute_v2 or a CUDA graph of v3",
    )
    p.add_argument(
        "--preprocess",
        choices=("auto", "gpu", "cpu"),
        default="auto",
        help="letterbox and decode on the GPU (CuPy, TensorRT backend) or the CPU; auto: GPU when usable",
    )
    p.add_argument("--json", metavar="PATH", help="write results as JSON (atomically); - for stdout")
    p.add_argument("--annotate", metavar="DIR", help="write images with boxes and landmarks drawn")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("models", help="list the model folder or fetch insightface's detectors")
    p.add_argument("action", choices=("list", "fetch"))
    p.add_argument("names", nargs="*", help="detectors to fetch (default: det_500m)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("compare", help="two configurations on the same images: tensors and faces")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--a", default="", help="model=,backend=,precision=fp32|fp16,size=N|WxH (default: defaults)"
    )
    p.add_argument("--b", default="precision=fp16", help="the other side (default: precision=fp16)")
    _add_thresholds(p)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON (atomically)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("build", help="build (or reuse from the cache) a TensorRT engine for a model")
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("--fp16", action="store_true", help="half precision (10.x flag, 11.x AutoCast ONNX)")
    p.add_argument("--min", help="profile min input: 128 or 1x3x128x128 (dynamic models)")
    p.add_argument("--opt", help="profile opt input (default 640)")
    p.add_argument("--max", help="profile max input (default 640 or the largest --size)")
    p.add_argument("--size", action="append", default=[], help="an input size the engine must take")
    p.add_argument("--workspace", type=int, metavar="MIB", help="builder workspace limit in MiB")
    p.add_argument("--opt-level", type=int, default=3, help="builder optimisation level 0..5 (3)")
    p.add_argument("--cache-dir", help="engine cache folder (default: data/engines)")
    p.add_argument("--rebuild", action="store_true", help="build even if the cache has a match")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("bench", help="time every runner and the pipeline side by side; print ratios")
    p.add_argument("image", nargs="?", help="image to time (default: the 48-face sample)")
    p.add_argument("--model", help=MODEL_HELP)
    _add_input_size(p)
    p.add_argument("--repeat", type=int, default=100, help="timed iterations per measurement")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON (atomically)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="versions, GPU, current CUDA context; --explain maps errors to fixes")
    p.add_argument("--explain", metavar="TEXT", help="an error message or log to explain")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("samples", help="generate the project's sample images into data/samples/")
    p.set_defaults(func=cmd_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
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
