"""The code that finds each rule of `helpers.lint.rules`: one function per rule over a `Program`.

Each check yields `(node, detail)`: where the mistake is and what to add to the rule's message.
Precision beats recall: a check that cannot tell stays silent.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Iterator

from helpers.lint.program import (
    CONTEXT_IMPORTS,
    CUDA_WORK,
    PUSHES,
    SYNCS,
    Program,
    imported_modules,
    name_of,
    position,
    text,
)

Hit = tuple[ast.AST, str]
Check = Callable[[Program], Iterator[Hit]]


def autoinit_with_threads(p: Program) -> Iterator[Hit]:
    """TRT001: a private context made on one thread while workers do CUDA work without it.

    Sources: TensorRT#4427 (SCRFD, threads, cuTensor permute failure), #2040 and pycuda#242
    (pycuda.autoinit + threads: 'no currently active context'); notebook 03 shows the primary
    context made current in each worker."""
    if not p.contextless_workers:
        return
    inside = {id(n) for f in p.thread_functions for n in ast.walk(f)}
    for node in p.imports:
        if id(node) not in inside and "pycuda.autoinit" in imported_modules(node):
            yield node, "pycuda.autoinit"
    for call in p.called(frozenset({"make_context"})):
        if id(call) not in inside:
            yield call, "make_context()"


def worker_without_context(p: Program) -> Iterator[Hit]:
    """TRT002: a thread function doing CUDA work with no context current on its thread.

    Fires only where the program uses pycuda or makes its own context (pycuda raises 'no currently
    active context'; the runtime silently takes the primary one). Sources: TensorRT#4427, #3028,
    pycuda#242, FastMOT#65, TensorRT-For-YOLO-Series#102."""
    if not (p.uses("pycuda") or p.called(frozenset({"make_context", "cuCtxCreate"}))):
        return
    for f, work in p.contextless_workers:
        yield work, f"{name_of(work.func)}() in thread function {f.name}()"


_ENGINE_SHAPES = frozenset({"get_tensor_shape", "get_binding_shape"})
_SIZERS = frozenset(
    {"volume", "prod", "pagelocked_empty", "mem_alloc", "empty", "zeros", "ones", "cudaMalloc"}
)


def _is_engine(receiver: ast.expr, engines: set[str]) -> bool:
    name = text(receiver)
    last = name.rsplit(".", 1)[-1].lower()
    return "context" not in last and "ctx" not in last and ("engine" in last or name in engines)


def engine_shape_sizes_buffer(p: Program) -> Iterator[Hit]:
    """TRT003: a buffer sized from `engine.get_tensor_shape` (-1 on dynamic dimensions).

    Source: NvInferRuntime.h (getTensorShape reports -1 for runtime dimensions); TensorRT#1564,
    #4120, #2040; NVIDIA's common_runtime.py sizes from the context after set_input_shape."""
    engines = {
        text(t)
        for n in p.nodes
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
        if name_of(n.value.func) in ("deserialize_cuda_engine", "build_engine")
        for t in n.targets
    }
    for scope in p.scopes:
        yield from _engine_shape_flow(p.nodes_of(scope), engines)


def _tested_against_constants(nodes: list[ast.AST]) -> set[str]:
    """Names compared with a constant (`-1 in shape`, `shape[0] < 0`, `all(s >= 0 for s in shape)`):
    the program handles dynamic dimensions itself."""

    def tests(n: ast.AST) -> bool:
        operands = [n.left, *n.comparators] if isinstance(n, ast.Compare) else []
        return any(isinstance(o, ast.UnaryOp | ast.Constant) for o in operands)

    names = set()
    for n in nodes:
        if isinstance(n, ast.Compare) and tests(n):
            names |= {m.id for m in ast.walk(n) if isinstance(m, ast.Name)}
        elif isinstance(n, ast.ListComp | ast.GeneratorExp | ast.SetComp) and any(map(tests, ast.walk(n))):
            names |= {m.id for g in n.generators for m in ast.walk(g.iter) if isinstance(m, ast.Name)}
    return names


def _engine_shape_flow(nodes: list[ast.AST], engines: set[str]) -> Iterator[Hit]:
    checked = _tested_against_constants(nodes)

    def origin(expr: ast.AST, tainted: dict[str, int]) -> int | None:
        for n in ast.walk(expr):
            if (
                isinstance(n, ast.Call)
                and name_of(n.func) in _ENGINE_SHAPES
                and isinstance(n.func, ast.Attribute)
                and _is_engine(n.func.value, engines)
            ):
                return id(n)
            if isinstance(n, ast.Name) and n.id in tainted:
                return tainted[n.id]
        return None

    events: list[tuple[tuple[int, int], int, ast.AST]] = [
        (position(n), 0, n) for n in nodes if isinstance(n, ast.Call)
    ]
    events += [((n.end_lineno or 0, n.end_col_offset or 0), 1, n) for n in nodes if isinstance(n, ast.Assign)]
    tainted: dict[str, int] = {}
    reported: set[int] = set()
    for _, _, node in sorted(events, key=lambda e: (e[0], e[1])):
        if isinstance(node, ast.Assign):
            source = origin(node.value, tainted)
            for target in node.targets:
                for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                    if source is None or name in checked:
                        tainted.pop(name, None)
                    else:
                        tainted[name] = source
        elif isinstance(node, ast.Call) and name_of(node.func) in _SIZERS:
            source = next((s for a in node.args if (s := origin(a, tainted)) is not None), None)
            if source is not None and source not in reported:
                reported.add(source)
                yield node, f"{name_of(node.func)}() of an engine shape"


_STATUS_CALLS = frozenset(
    {
        "execute_async_v3",
        "execute_v2",
        "execute_async_v2",
        "set_input_shape",
        "set_tensor_address",
        "set_optimization_profile_async",
    }
)
_MAY_BE_NONE = frozenset({"build_serialized_network", "deserialize_cuda_engine", "build_engine_with_config"})
_TESTS = (ast.If, ast.While, ast.Assert, ast.IfExp)


def status_ignored(p: Program) -> Iterator[Hit]:
    """TRT004: a TensorRT call that reports failure by its result, with the result dropped.

    Source: pyCoreDoc.h (execute_async_v3, set_input_shape, set_tensor_address return bool;
    build_serialized_network / deserialize_cuda_engine return None on failure); TensorRT#4427
    (enqueueV3 failed, outputs stayed zero)."""
    for n in p.nodes:
        if (
            isinstance(n, ast.Expr)
            and isinstance(n.value, ast.Call)
            and name_of(n.value.func) in _STATUS_CALLS
        ):
            yield n.value, f"{name_of(n.value.func)}() returns False on failure"
    for scope in p.scopes:
        yield from _none_unchecked(p.nodes_of(scope), p.parents)


def _none_unchecked(nodes: list[ast.AST], parents: dict[int, ast.AST]) -> Iterator[Hit]:
    for call in (n for n in nodes if isinstance(n, ast.Call) and name_of(n.func) in _MAY_BE_NONE):
        parent = parents.get(id(call))
        what = f"{name_of(call.func)}() returns None on failure"
        if isinstance(parent, ast.Attribute) or (isinstance(parent, ast.Call) and call in parent.args):
            yield call, what
        elif isinstance(parent, ast.Assign) and len(parent.targets) == 1:
            key = text(parent.targets[0])
            if _used_unchecked(key, nodes, parents):
                yield call, what


def _tests(test: ast.expr, key: str) -> bool:
    """Whether a condition tests `key` itself (`x`, `not x`, `x and ...`), not something read from it."""
    if isinstance(test, ast.UnaryOp):
        return _tests(test.operand, key)
    if isinstance(test, ast.BoolOp):
        return any(_tests(v, key) for v in test.values)
    return text(test) == key


def _checker(call: ast.Call) -> bool:
    return any(w in name_of(call.func).lower() for w in ("check", "require", "ensure"))


def _used_unchecked(key: str, nodes: list[ast.AST], parents: dict[int, ast.AST]) -> bool:
    """Whether `key` is read somewhere in the scope (other than returned) and never tested."""
    used = False
    for n in nodes:
        if isinstance(n, _TESTS) and _tests(n.test, key):
            return False
        if isinstance(n, ast.Compare) and any(text(o) == key for o in [n.left, *n.comparators]):
            return False
        if isinstance(n, ast.Call) and _checker(n) and any(text(a) == key for a in n.args):
            return False
        if isinstance(n, ast.Name | ast.Attribute) and isinstance(n.ctx, ast.Load) and text(n) == key:
            used = used or not isinstance(parents.get(id(n)), ast.Return)
    return used


_METADATA = frozenset({"shape", "dtype", "nbytes", "size", "ndim", "itemsize"})


def _host_key(expr: ast.expr) -> str:
    """The host array an address expression names: `h[i]`, `h.ctypes.data` → `h`."""
    while True:
        if isinstance(expr, ast.Subscript) or (
            isinstance(expr, ast.Attribute) and expr.attr in ("data", "ctypes", "ptr")
        ):
            expr = expr.value
        elif (
            isinstance(expr, ast.Call)
            and name_of(expr.func) == "data_as"
            and isinstance(expr.func, ast.Attribute)
        ):
            expr = expr.func.value
        else:
            return text(expr)


def _non_blocking(kw: dict[str | None, ast.expr]) -> bool:
    """CuPy's get/asnumpy copy asynchronously only with blocking=False (CuPy 13; before, any stream=)."""
    blocking = kw.get("blocking")
    return isinstance(blocking, ast.Constant) and blocking.value is False


def _dtoh_copies(nodes: list[ast.AST], parents: dict[int, ast.AST]) -> Iterator[tuple[ast.Call, str]]:
    values = sorted(  # `kind = cudaMemcpyDeviceToHost` then `cudaMemcpyAsync(..., kind, ...)`
        (position(n), t.id, text(n.value))
        for n in nodes
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    )

    def meaning(arg: ast.expr, at: tuple[int, int]) -> str:
        """What a name held when `at` ran: its last assignment before that, else its own text."""
        said = text(arg)
        return next((v for pos, name, v in reversed(values) if name == said and pos < at), said)

    for call in (n for n in nodes if isinstance(n, ast.Call)):
        name = name_of(call.func)
        kw = {k.arg: k.value for k in call.keywords}
        pycuda = name == "memcpy_dtoh_async" and call.args
        runtime = name == "cudaMemcpyAsync" and len(call.args) > 3
        runtime = runtime and "DeviceToHost" in meaning(call.args[3], position(call))
        if pycuda or runtime:
            yield call, _host_key(call.args[0])
        elif name in ("get", "asnumpy") and _non_blocking(kw) and isinstance(call.func, ast.Attribute):
            parent = parents.get(id(call))
            if "out" in kw:
                yield call, _host_key(kw["out"])
            elif isinstance(parent, ast.Assign) and len(parent.targets) == 1:
                yield call, text(parent.targets[0])


def read_before_sync(p: Program) -> Iterator[Hit]:
    """TRT005: the host array of an async D2H copy read before its stream is synchronised.

    Source: pycuda docs (memcpy_dtoh_async only enqueues), CUDA runtime cudaMemcpyAsync,
    CuPy ndarray.get(stream=, blocking=False) (blocking=True, the default since CuPy 13, waits);
    TensorRT#930 (outputs copied before stream.synchronize: random detections). Scripts where the
    copy and the read sit in different functions are not judged."""
    syncing = {name for name, fs in p.functions.items() if any(p.first_call(f, SYNCS) for f in fs)}
    for scope in p.scopes:
        nodes, parents = p.nodes_of(scope), p.parents
        syncs = sorted(
            position(c)
            for c in nodes
            if isinstance(c, ast.Call) and (name_of(c.func) in SYNCS or name_of(c.func) in syncing)
        )
        for copy, key in _dtoh_copies(nodes, parents):
            end = (copy.end_lineno or 0, copy.end_col_offset or 0)
            read = _first_host_read(nodes, parents, key, end)
            if read is not None and not any(end < s < position(read) for s in syncs):
                yield read, f"{key} copied at line {copy.lineno}"


def _stream_ordered(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether `node` is an argument of more work on a stream (a copy, a launch): no host read."""
    up = parents.get(id(node))
    while up is not None and not isinstance(up, ast.stmt):
        if isinstance(up, ast.Call):
            name = name_of(up.func)
            if name.endswith(("_async", "Async")) or name in ("launch", "cudaGraphLaunch"):
                return True
        up = parents.get(id(up))
    return False


def _first_host_read(
    nodes: list[ast.AST], parents: dict[int, ast.AST], key: str, after: tuple[int, int]
) -> ast.AST | None:
    """The first read of host array `key` after `after` by the host (not its metadata, not a copy)."""
    reads = (
        n
        for n in nodes
        if isinstance(n, ast.Name | ast.Attribute)
        and isinstance(n.ctx, ast.Load)
        and position(n) > after
        and text(n) == key
        and not (isinstance(a := parents.get(id(n)), ast.Attribute) and a.attr in _METADATA)
        and not _stream_ordered(n, parents)
    )
    return min(reads, key=position, default=None)


_V3 = "context.set_tensor_address(name, ptr) for each tensor, then execute_async_v3(stream)"
_SERIALIZED = "builder.build_serialized_network(network, config) + Runtime.deserialize_cuda_engine"
_REMOVED_IN_10 = {
    "get_binding_shape": "engine/context.get_tensor_shape(name)",
    "get_binding_index": "tensor names: engine.get_tensor_name(i) for i in range(engine.num_io_tensors)",
    "get_binding_name": "engine.get_tensor_name(i)",
    "get_binding_dtype": "engine.get_tensor_dtype(name)",
    "binding_is_input": "engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT",
    "num_bindings": "engine.num_io_tensors",
    "execute_async_v2": _V3,
    "execute_async": _V3,
    "execute": _V3,
    "build_engine": _SERIALIZED,
    "build_cuda_engine": _SERIALIZED,
    "max_workspace_size": "config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, nbytes)",
    "set_binding_shape": "context.set_input_shape(name, shape)",
    "get_profile_shape": "engine.get_tensor_profile_shape(name, profile)",
    "set_shape_input": "context.set_tensor_address(name, host_ptr) for shape tensors",
    "max_batch_size": "the batch dimension of the input shape (explicit batch, an optimisation profile)",
}
_REMOVED_IN_11 = {
    "platform_has_fast_fp16": "nothing: build an FP16 ONNX (ModelOpt AutoCast) and check the engine",
    "platform_has_fast_int8": "nothing: quantise the ONNX with ModelOpt",
    "platform_has_tf32": "nothing: TF32 is a BuilderFlag that stays",
    "EXPLICIT_BATCH": "create_network(0) or the STRONGLY_TYPED flag (networks are always explicit batch)",
    "device_memory_size": "engine.device_memory_size_v2",
    "get_device_memory_size_for_profile": "engine.get_device_memory_size_for_profile_v2(profile)",
    "create_execution_context_without_device_memory": (
        "engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)"
    ),
    "has_implicit_batch_dimension": "nothing: every network is explicit batch",
    "int8_calibrator": "a quantised ONNX (NVIDIA ModelOpt)",
}
_PRECISION_FLAGS = frozenset(
    {
        "FP16",
        "BF16",
        "INT8",
        "FP8",
        "INT4",
        "FP4",
        "OBEY_PRECISION_CONSTRAINTS",
        "PREFER_PRECISION_CONSTRAINTS",
    }
)
_RECEIVERS = {  # names common outside TensorRT too: a config's max_batch_size, a cursor's execute
    "max_batch_size": ("engine", "builder"),
    "execute": ("context",),
}
_TRT_RECEIVER = ("engine", "context", "ctx", "builder", "config", "trt", "tensorrt", "runtime", "parser")


def _removed(p: Program, table: dict[str, str]) -> Iterator[Hit]:
    if not (p.uses("tensorrt") or p.uses("pycuda")):
        return
    ours = set(p.functions)
    guards = p.compatibility_code
    for n in p.nodes:
        if not isinstance(n, ast.Attribute) or n.attr not in table or n.attr in ours or id(n) in guards:
            continue
        receiver = text(n.value).lower()
        if any(w in receiver for w in _RECEIVERS.get(n.attr, _TRT_RECEIVER)):
            yield n, f"{n.attr} -> {table[n.attr]}"


def removed_in_10(p: Program) -> Iterator[Hit]:
    """TRT006: TensorRT 8 names removed in 10.0.

    Source: pyCore.cpp at v8.6.1 vs v10.0.0 (binding-index API, implicit batch, v1/v2 enqueue,
    build_engine, max_workspace_size); TensorRT#3931 (execute_async_v2 gone in 10), #930."""
    yield from _removed(p, _REMOVED_IN_10)


def removed_in_11(p: Program) -> Iterator[Hit]:
    """TRT007: TensorRT 10 names removed in 11.0 (weak typing, platform_has_* queries).

    Source: pyCore.cpp at v10.16 vs v11.0; NVIDIA's 'TensorRT 10.x to 11.x Python API patterns'."""
    yield from _removed(p, _REMOVED_IN_11)
    guards = p.compatibility_code
    for n in p.nodes:
        if (
            isinstance(n, ast.Attribute)
            and n.attr in _PRECISION_FLAGS
            and isinstance(n.value, ast.Attribute | ast.Name)
            and name_of(n.value) == "BuilderFlag"
            and id(n) not in guards
        ):
            yield n, f"BuilderFlag.{n.attr} -> an FP16/quantised ONNX (ModelOpt AutoCast), no flag"


_STREAM_ARG = {"execute_async_v3": 0, "execute_async_v2": 1, "execute_async": 2, "cudaMemcpyAsync": 4}


def default_stream(p: Program) -> Iterator[Hit]:
    """TRT008: enqueue on the legacy default stream (handle 0).

    Source: NvInferRuntime.h enqueueV3 ('using the default stream may lead to performance issues
    due to additional cudaDeviceSynchronize() calls'); CUDA stream capture cannot use it."""
    for scope in p.scopes:
        nodes = p.nodes_of(scope)
        zeros = {
            text(t)
            for n in nodes
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and n.value.value == 0
            for t in n.targets
        }
        for call in (n for n in nodes if isinstance(n, ast.Call) and name_of(n.func) in _STREAM_ARG):
            index = _STREAM_ARG[name_of(call.func)]
            kw = {k.arg: k.value for k in call.keywords}
            arg = call.args[index] if len(call.args) > index else kw.get("stream_handle", kw.get("stream"))
            if arg is None:
                continue
            zero = isinstance(arg, ast.Constant) and arg.value == 0
            if zero or text(arg) in zeros or text(arg).endswith("Stream.null.ptr"):
                yield call, f"{name_of(call.func)}({text(arg)})"


_ORT_RUN = "run"
_INFERENCE_CALLS = frozenset({"do_inference", "do_inference_v2", "infer", "inference"})
_SCRFD_WORDS = ("scrfd", "distance2bbox", "_feat_stride_fpn", "fmc", "feat_stride")


def _output_lists(nodes: list[ast.AST]) -> dict[str, tuple[int, int]]:
    """Names holding model outputs as a list (ORT session.run results, TensorRT host outputs),
    with where they first do."""
    names: dict[str, tuple[int, int]] = {}
    for n in nodes:  # outputs.append((host, device)) per engine output
        if isinstance(n, ast.Call) and name_of(n.func) == "append" and isinstance(n.func, ast.Attribute):
            target = n.func.value
            if isinstance(target, ast.Name) and "out" in target.id.lower() and "host" in text(n).lower():
                names.setdefault(target.id, (n.end_lineno or 0, n.end_col_offset or 0))
    for n in nodes:
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
            continue
        v = n.value
        ort = (
            isinstance(v, ast.Call)
            and name_of(v.func) == _ORT_RUN
            and isinstance(v.func, ast.Attribute)
            and len(v.args) == 2
        )
        trt = isinstance(v, ast.Call) and name_of(v.func) in _INFERENCE_CALLS
        listed = isinstance(v, ast.ListComp) and "host" in text(v).lower()  # [o.host for o in outputs]
        held = isinstance(v, ast.Attribute) and "output" in v.attr.lower()  # net_outs = self.host_outputs
        if ort or trt or listed or held:
            names.setdefault(n.targets[0].id, (n.end_lineno or 0, n.end_col_offset or 0))
    return names


def _counters(nodes: list[ast.AST]) -> set[str]:
    """Names that hold a position: `for i, _ in enumerate(...)`, `for i in range(...)`, `i = 0`."""
    names = set()
    for n in nodes:
        if isinstance(n, ast.For | ast.comprehension) and isinstance(n.iter, ast.Call):
            target = n.target
            if name_of(n.iter.func) == "enumerate" and isinstance(target, ast.Tuple):
                target = target.elts[0]
            if name_of(n.iter.func) in ("enumerate", "range") and isinstance(target, ast.Name):
                names.add(target.id)
        elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and type(n.value.value) is int:
            names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return names


def _zips_strides(args: list[ast.expr], outputs: Collection[str]) -> bool:
    return any(isinstance(a, ast.Name) and a.id in outputs for a in args) and any(
        "stride" in text(a).lower() or isinstance(a, ast.List | ast.Tuple) for a in args
    )


def outputs_by_position(p: Program) -> Iterator[Hit]:
    """TRT009: SCRFD outputs taken by position from a session.run / host-output list.

    Source: insightface's scrfd.py (net_outs[idx], net_outs[idx + fmc]); TensorRT orders I/O
    tensors its own way (TensorRT#1042) and SCRFD engines came back in another order
    (InsightFace-REST#37)."""
    mentions = p.text_mentions
    if not any(w in mentions for w in _SCRFD_WORDS):
        return
    for scope in p.scopes:
        nodes = p.nodes_of(scope)
        outputs = _output_lists(nodes)
        if not outputs:
            continue
        counters = _counters(nodes)
        for n in (n for n in nodes if position(n) > min(outputs.values())):
            if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in outputs:
                index = n.slice
                if (
                    (isinstance(index, ast.Constant) and type(index.value) is int)
                    or isinstance(index, ast.BinOp)
                    or (isinstance(index, ast.Name) and index.id in counters)
                ):
                    yield n, text(n)
            elif isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Tuple):
                if isinstance(n.value, ast.Name) and n.value.id in outputs:
                    yield n, f"unpacking {n.value.id} by position"
            elif isinstance(n, ast.Call) and name_of(n.func) == "zip" and _zips_strides(n.args, outputs):
                yield n, "zip of strides with outputs in engine order"


def init_without_context(p: Program) -> Iterator[Hit]:
    """TRT010: pycuda's cuda.init() and CUDA work, but no context created or pushed anywhere.

    Source: pycuda docs (Context.push / make_context; init only initialises the driver);
    pycuda#251 (cuda.init() then 'invalid device context')."""
    if not p.uses("pycuda.driver") or any(m in CONTEXT_IMPORTS for m in p.modules):
        return
    if p.called(PUSHES | frozenset({"retain_primary_context", "cuCtxCreate"})):
        return
    if not p.called(CUDA_WORK):
        return
    for call in p.called(frozenset({"init"})):
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and not call.args:
            yield call, f"{text(call.func)}()"


CHECKS: dict[str, Check] = {
    "TRT001": autoinit_with_threads,
    "TRT002": worker_without_context,
    "TRT003": engine_shape_sizes_buffer,
    "TRT004": status_ignored,
    "TRT005": read_before_sync,
    "TRT006": removed_in_10,
    "TRT007": removed_in_11,
    "TRT008": default_stream,
    "TRT009": outputs_by_position,
    "TRT010": init_without_context,
}
