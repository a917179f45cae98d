"""ONNX -> TensorRT plan, cached, with progress, for TensorRT 10.x and 11.x.

The decisions (profile, precision route, cache key) are pure functions; `_build_plan` is the
only part that calls TensorRT. FP16 differs by version: 10.x has `BuilderFlag.FP16` (refused
in strongly typed networks), 11.x has no such flag and takes an FP16 ONNX made by ModelOpt
AutoCast. The build runs in a worker thread inside the device's primary CUDA context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.atomic import write_bytes
from helpers.errors import UserError
from helpers.models import ENGINES_DIR
from helpers.precision import PRECISIONS
from helpers.trt.autocast import autocast_fp16
from helpers.trt.cache import BuildKey, CacheEntry, EngineCache, file_sha256
from helpers.trt.progress import Job, ProgressState, finish, make_monitor, make_renderer
from helpers.trt.runtime import current_target, load_tensorrt, log_book, logger
from helpers.trt.specs import Profile, Shape, check_profile_fits, default_profile

if TYPE_CHECKING:
    import tensorrt as trt

DEFAULT_CACHE_DIR = ENGINES_DIR
MAX_OPT_LEVEL = 5


@dataclass(frozen=True)
class BuildOptions:
    """What the user asks of a build; min/opt/max apply to dynamic-input models only."""

    precision: str = "fp32"  # "fp32" or "fp16"
    min_shape: Shape | None = None
    opt_shape: Shape | None = None
    max_shape: Shape | None = None
    sizes: tuple[Shape, ...] = ()  # input sizes the engine must accept (widen the default profile)
    workspace: int | None = None  # bytes; None leaves TensorRT's default (all device memory)
    opt_level: int = 3
    device: int = 0
    batch: tuple[int, int, int] | None = None  # min, opt, max images per run (dynamic-batch models)

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r} is not supported; use {' or '.join(PRECISIONS)}")
        if not 0 <= self.opt_level <= MAX_OPT_LEVEL:
            raise UserError(f"--opt-level {self.opt_level} is outside 0..{MAX_OPT_LEVEL} (default 3)")
        if self.workspace is not None and self.workspace <= 0:
            raise UserError(f"--workspace {self.workspace} must be a positive number of bytes")
        if self.batch is not None and not 0 < self.batch[0] <= self.batch[1] <= self.batch[2]:
            lo, opt, hi = self.batch
            raise UserError(f"--batch-range {lo} {opt} {hi} is not ordered 1 <= min <= opt <= max")


@dataclass(frozen=True)
class PrecisionPlan:
    """How to get the asked precision from this TensorRT."""

    strongly_typed: bool  # create the network with STRONGLY_TYPED
    fp16_flag: bool  # set BuilderFlag.FP16 (10.x)
    autocast: bool  # build from an FP16 ONNX made by ModelOpt AutoCast (11.x)


def precision_plan(precision: str, has_fp16_flag: bool, has_strongly_typed: bool) -> PrecisionPlan:
    """Pick the route from what the TensorRT module offers, not from its version number."""
    if precision == "fp32":
        return PrecisionPlan(has_strongly_typed, False, False)
    if has_fp16_flag:  # 10.x: the FP16 flag is not allowed on a strongly typed network
        return PrecisionPlan(False, True, False)
    return PrecisionPlan(has_strongly_typed, False, True)  # 11.x: types come from the ONNX


@dataclass(frozen=True)
class OnnxInput:
    name: str
    dims: tuple[int | str, ...]  # str for a symbolic or unknown dimension

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(d, int) for d in self.dims)


def read_onnx_input(onnx_path: Path) -> OnnxInput:
    """The model's one image input, read with `onnx` (no TensorRT needed)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except FileNotFoundError:
        raise UserError(f"model {onnx_path} does not exist; check the path") from None
    except Exception as exc:  # onnx raises DecodeError and others for a broken file
        raise UserError(f"cannot read ONNX model {onnx_path}: {type(exc).__name__}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise UserError(f"{onnx_path.name} has {len(inputs)} inputs; SCRFD exports have one image input")
    dims = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
        for d in inputs[0].type.tensor_type.shape.dim
    )
    return OnnxInput(inputs[0].name, dims)


def resolve_profile(onnx_input: OnnxInput, options: BuildOptions) -> Profile | None:
    """The optimization profile to build with, or None for a fixed-size model."""
    given = {"--min": options.min_shape, "--opt": options.opt_shape, "--max": options.max_shape}
    fixed_batch = onnx_input.dims[0] if isinstance(onnx_input.dims[0], int) else None
    if options.batch is not None and fixed_batch is not None and set(options.batch) != {fixed_batch}:
        raise UserError(
            f"input {onnx_input.name!r} is fixed at batch {fixed_batch}, so --batch-range cannot change it; "
            "make the model batchable first (python -m helpers batchify MODEL) and build that file"
        )
    if not onnx_input.dynamic:
        asked = [flag for flag, shape in given.items() if shape is not None]
        if asked:
            verb, them = ("applies", "it") if len(asked) == 1 else ("apply", "them")
            raise UserError(
                f"input {onnx_input.name!r} is fixed at {onnx_input.dims}; {' and '.join(asked)} {verb} "
                f"only to dynamic-input exports: drop {them}, or build from a dynamic export"
            )
        return None
    explicit = [s for s in given.values() if s is not None]
    fixed = _fixed_sides(onnx_input.dims)
    base = default_profile([*options.sizes, *explicit], options.opt_shape, fixed)
    shapes = (options.min_shape or base.min, base.opt, options.max_shape or base.max)
    if options.batch is not None:
        shapes = tuple((n, *shape[1:]) for n, shape in zip(options.batch, shapes, strict=True))  # type: ignore[assignment]
    profile = Profile(*shapes)
    check_profile_fits(onnx_input.name, onnx_input.dims, profile)
    return profile


def _fixed_sides(dims: tuple[int | str, ...]) -> tuple[int, int] | None:
    """(H, W) of an input whose batch alone is dynamic (a batchable static export), else None."""
    h, w = dims[2:4] if len(dims) == 4 else ("?", "?")
    return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def format_parser_error(node: int, node_name: str, node_operator: str, desc: str) -> str:
    """'node 12 (Conv 'conv_5'): desc' — where in the ONNX graph the parser gave up."""
    where = f"node {node}" if node >= 0 else "model"
    detail = " ".join(p for p in (node_operator, repr(node_name) if node_name else "") if p)
    return f"{where} ({detail}): {desc}" if detail else f"{where}: {desc}"


@dataclass(frozen=True)
class BuildResult:
    plan: bytes
    entry: CacheEntry
    key: BuildKey
    cached: bool
    reason: str  # why the cache hit or missed


def build_engine(
    onnx_path: str | Path,
    options: BuildOptions | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    rebuild: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Build (or reuse from the cache) a plan for `onnx_path`; waits, and Ctrl-C cancels.

    progress shows a notebook widget in Jupyter, a text bar on a terminal.
    """
    return start_build(onnx_path, options, cache_dir, rebuild, progress).wait()


def start_build(
    onnx_path: str | Path,
    options: BuildOptions | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    rebuild: bool = False,
    progress: bool = True,
) -> Job[BuildResult]:
    """Like `build_engine` but returns at once; in a notebook this lets the Cancel button work."""
    options = options or BuildOptions()
    options.check()
    path = Path(onnx_path)
    profile = resolve_profile(read_onnx_input(path), options)
    key = BuildKey(
        file_sha256(path),
        current_target(options.device),
        options.precision,
        profile,
        options.opt_level,
        options.workspace,
    )
    cache = EngineCache(cache_dir)
    found = cache.lookup(key, path.stem)
    state = ProgressState()
    if found.plan is not None and not rebuild:
        hit = BuildResult(found.plan, found.entry, key, True, found.reason)
        return Job(lambda: hit, state)
    renderer = make_renderer(state) if progress else None
    reason = "rebuild asked for" if found.plan is not None else found.reason

    def work() -> BuildResult:
        from helpers.cuda.context import CudaContext, drop_frames

        cuda = CudaContext.primary(options.device)  # a new thread has no context current
        try:
            with cuda.activate():
                try:
                    plan, layers = _build_plan(path, options, profile, cache, key, state)
                except BaseException as exc:
                    drop_frames(exc)  # builder, network, parser, config go now, in this context
                    raise
        except BaseException:
            finish(renderer, state, "cancelled" if state.cancelled else "failed")
            raise
        finally:
            cuda.release()
        entry = cache.store(key, path.stem, plan, layers)
        finish(renderer, state, f"built {entry.plan.name}")
        return BuildResult(plan, entry, key, False, reason)

    return Job(work, state)


def _build_plan(
    onnx_path: Path,
    options: BuildOptions,
    profile: Profile | None,
    cache: EngineCache,
    key: BuildKey,
    state: ProgressState,
) -> tuple[bytes, str]:
    """Parse, configure and build; returns the plan and the engine inspector's JSON."""
    load_tensorrt()
    import tensorrt as trt

    route = precision_plan(
        options.precision,
        hasattr(trt.BuilderFlag, "FP16"),
        hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"),
    )
    source = onnx_path
    if route.autocast:
        source = autocast_fp16(onnx_path, cache.root, profile.opt if profile else None)
    log_book().clear()
    builder = trt.Builder(logger())
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if route.strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger())
    if not parser.parse_from_file(str(source)):
        raise UserError(f"TensorRT cannot parse {source.name}: {_parser_errors(parser)}")
    config = _configure(builder, network, options, route, profile)
    timing_path = cache.timing_cache(key.target)
    timing = _attach_timing_cache(config, timing_path)  # must outlive the build
    monitor = make_monitor(state)  # TensorRT does not own it: keep it referenced
    config.progress_monitor = monitor
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        if state.cancelled:
            raise UserError("engine build cancelled; nothing was cached")
        raise UserError(
            "TensorRT could not build the engine: "
            + log_book().last_error("no error was logged; try a larger --workspace")
        )
    plan = bytes(serialized)
    write_bytes(timing_path, bytes(timing.serialize()))  # the cache the build filled
    return plan, _inspect(plan)


def _configure(
    builder: trt.Builder,
    network: trt.INetworkDefinition,
    options: BuildOptions,
    route: PrecisionPlan,
    profile: Profile | None,
) -> trt.IBuilderConfig:
    import tensorrt as trt

    config = builder.create_builder_config()
    if route.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if options.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace)
    config.builder_optimization_level = options.opt_level
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the inspector report
    if profile is not None:
        shapes = builder.create_optimization_profile()
        dims = [trt.Dims(list(s)) for s in (profile.min, profile.opt, profile.max)]
        shapes.set_shape(network.get_input(0).name, *dims)
        config.add_optimization_profile(shapes)
    return config


def _parser_errors(parser: trt.OnnxParser) -> str:
    errors = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        errors.append(format_parser_error(err.node(), err.node_name(), err.node_operator(), err.desc()))
    return "; ".join(errors) or log_book().last_error("no parser error recorded")


def _attach_timing_cache(config: trt.IBuilderConfig, path: Path) -> trt.ITimingCache:
    """Reuse saved tactic timings; one from another GPU or version is replaced, not forced."""
    cache = config.create_timing_cache(path.read_bytes() if path.exists() else b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        cache = config.create_timing_cache(b"")
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise UserError("TensorRT refused an empty timing cache; " + log_book().last_error("no detail"))
    return cache


def _inspect(plan: bytes) -> str:
    """Per-layer engine report (JSON), saved beside the plan; needs DETAILED verbosity."""
    import tensorrt as trt

    try:  # the plan is built and good; a failed report must not fail the build
        runtime = trt.Runtime(logger())  # kept alive while its engine is used
        engine = runtime.deserialize_cuda_engine(plan)
        inspector = engine.create_engine_inspector() if engine is not None else None
        if inspector is None:
            return json.dumps({"error": log_book().last_error("no engine inspector")})
        return inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    except Exception as exc:  # TensorRT raises RuntimeError/TypeError variants here
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
