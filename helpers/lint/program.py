"""What the rules need to know about one parsed program: its imports, functions and thread targets.

Built once per file (or per notebook, whose code cells make one program) so that every rule
reads the same facts; nothing here imports or runs the user's code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cached_property

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

# Calls that need a current CUDA context (pycuda, the CUDA runtime/driver, TensorRT objects).
CUDA_WORK = frozenset(
    {
        "execute_async_v3",
        "execute_async_v2",
        "execute_async",
        "execute_v2",
        "mem_alloc",
        "pagelocked_empty",
        "memcpy_htod_async",
        "memcpy_dtoh_async",
        "memcpy_htod",
        "memcpy_dtoh",
        "memcpy_dtod_async",
        "cudaMalloc",
        "cudaMemcpy",
        "cudaMemcpyAsync",
        "cudaStreamCreate",
        "cudaStreamCreateWithFlags",
        "cuMemAlloc",
        "cuStreamCreate",
        "create_execution_context",
        "deserialize_cuda_engine",
        "Stream",
        "Event",
    }
)
# Calls that make a CUDA context current on the calling thread.
PUSHES = frozenset(
    {
        "push",
        "activate",
        "make_context",
        "cudaSetDevice",
        "cuCtxSetCurrent",
        "cuCtxPushCurrent",
        "attach",
        "within",
    }
)
SYNCS = frozenset(
    {
        "synchronize",
        "cudaStreamSynchronize",
        "cudaDeviceSynchronize",
        "cudaEventSynchronize",
        "cuStreamSynchronize",
        "cuCtxSynchronize",
        "cuEventSynchronize",
    }
)
_THREAD_POOLS = frozenset({"ThreadPoolExecutor", "ThreadPool"})
_PROCESS_POOLS = frozenset({"ProcessPoolExecutor", "Pool", "Process"})
_POOL_CALLS = frozenset({"submit", "map", "imap", "imap_unordered", "starmap", "apply_async", "apply"})
CONTEXT_IMPORTS = ("pycuda.autoinit", "pycuda.autoprimaryctx")


def name_of(func: ast.expr) -> str:
    """The called name: `cuda.mem_alloc` → `mem_alloc`, `Thread` → `Thread`."""
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


_AMBIGUOUS = frozenset({"Stream", "Event"})  # threading.Event, asyncio streams...
_NOT_CUDA = ("threading", "multiprocessing", "asyncio", "queue")


def named(call: ast.Call, names: frozenset[str]) -> bool:
    """Whether `call` calls one of `names`; `Stream`/`Event` only through a CUDA module (`cuda.Event()`)."""
    name = name_of(call.func)
    if name not in names:
        return False
    if name in _AMBIGUOUS:
        return isinstance(call.func, ast.Attribute) and not text(call.func.value).startswith(_NOT_CUDA)
    return True


def text(node: ast.AST) -> str:
    return ast.unparse(node)


def scope_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Every node of one function (or the module body), not of the functions nested in it."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    return [base] + [f"{base}.{a.name}" for a in node.names]


class Program:
    """One parsed module and the facts about it that several rules share."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.nodes = list(ast.walk(tree))
        self.calls = [n for n in self.nodes if isinstance(n, ast.Call)]
        self.functions: dict[str, list[FunctionNode]] = {}
        for n in self.nodes:
            if isinstance(n, FunctionNode):
                self.functions.setdefault(n.name, []).append(n)
        self.imports = [n for n in self.nodes if isinstance(n, ast.Import | ast.ImportFrom)]
        self.modules = {m for n in self.imports for m in imported_modules(n)}
        self.parents = {id(c): n for n in self.nodes for c in ast.iter_child_nodes(n)}
        self._scoped: dict[int, list[ast.AST]] = {}
        self._first: dict[tuple[int, frozenset[str], int], ast.Call | None] = {}

    def nodes_of(self, scope: ast.AST) -> list[ast.AST]:
        """`scope_nodes(scope)`, computed once: every check walks the same scopes."""
        if id(scope) not in self._scoped:
            self._scoped[id(scope)] = list(scope_nodes(scope))
        return self._scoped[id(scope)]

    def called(self, names: frozenset[str]) -> list[ast.Call]:
        return [c for c in self.calls if named(c, names)]

    def uses(self, prefix: str) -> bool:
        return any(m == prefix or m.startswith(prefix + ".") for m in self.modules)

    @cached_property
    def scopes(self) -> list[ast.AST]:
        return [self.tree, *(f for fs in self.functions.values() for f in fs)]

    @cached_property
    def compatibility_code(self) -> set[int]:
        """Nodes under `if hasattr(...)`, a version test, a test of a flag's presence (`if
        plan.fp16_flag:`) or `except AttributeError`: code written for several TensorRT versions,
        which the removed-API rules leave alone."""
        guarded: set[int] = set()
        for n in self.nodes:
            if isinstance(n, ast.If | ast.IfExp):
                test = text(n.test)
                if any(w in test.lower() for w in ("hasattr", "getattr", "version", "flag")):
                    guarded |= {id(m) for m in ast.walk(n)}
            elif isinstance(n, ast.Try) and any(
                h.type is None or "AttributeError" in text(h.type) for h in n.handlers
            ):
                guarded |= {id(m) for s in n.body for m in ast.walk(s)}
        return guarded

    @cached_property
    def text_mentions(self) -> str:
        """Every identifier, attribute and string of the program, lower-cased, for cheap topic tests."""
        words = []
        for n in self.nodes:
            if isinstance(n, ast.Name):
                words.append(n.id)
            elif isinstance(n, ast.Attribute):
                words.append(n.attr)
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                words.append(n.value)
            elif isinstance(n, FunctionNode):
                words.append(n.name)
        return " ".join(words).lower()

    def resolve(self, target: ast.expr) -> list[FunctionNode]:
        """The functions of this program that `target` (a thread target, a callee) names."""
        if isinstance(target, ast.Name | ast.Attribute):
            return list(self.functions.get(name_of(target), ()))
        if isinstance(target, ast.Lambda):
            return [f for c in ast.walk(target.body) if isinstance(c, ast.Call) for f in self.resolve(c.func)]
        if isinstance(target, ast.Call) and name_of(target.func) == "partial" and target.args:
            return self.resolve(target.args[0])
        return []

    @cached_property
    def thread_starts(self) -> list[tuple[ast.AST, list[FunctionNode]]]:
        """Each place a thread is started, with the program's functions it runs."""
        pools = {name_of(c.func) for c in self.calls} & (_THREAD_POOLS | _PROCESS_POOLS)
        threaded_pools = bool(pools & _THREAD_POOLS) or not pools
        starts: list[tuple[ast.AST, list[FunctionNode]]] = []
        for call in self.calls:
            name = name_of(call.func)
            if name == "Thread":
                target = next((k.value for k in call.keywords if k.arg == "target"), None)
                starts.append((call, self.resolve(target) if target is not None else []))
            elif name in _THREAD_POOLS:
                starts.append((call, []))
            elif (
                name in _POOL_CALLS and isinstance(call.func, ast.Attribute) and call.args and threaded_pools
            ):
                if name == "submit" or pools:
                    starts.append((call, self.resolve(call.args[0])))
            elif name == "run_in_executor" and len(call.args) > 1:
                starts.append((call, self.resolve(call.args[1])))
            elif name == "to_thread" and call.args:
                starts.append((call, self.resolve(call.args[0])))
        for cls in (n for n in self.nodes if isinstance(n, ast.ClassDef)):
            if any(text(b).endswith("Thread") for b in cls.bases):
                runs = [f for f in cls.body if isinstance(f, FunctionNode) and f.name == "run"]
                starts.append((cls, runs))
        return starts

    @cached_property
    def thread_functions(self) -> list[FunctionNode]:
        seen: dict[int, FunctionNode] = {}
        for _, functions in self.thread_starts:
            for f in functions:
                seen.setdefault(id(f), f)
        return list(seen.values())

    def first_call(self, function: FunctionNode, names: frozenset[str], depth: int = 3) -> ast.Call | None:
        """The first call in `function` to one of `names`, or to a function of ours that makes one."""
        key = (id(function), names, depth)
        if key not in self._first:
            self._first[key] = None  # a recursive program ends here
            calls = sorted((n for n in self.nodes_of(function) if isinstance(n, ast.Call)), key=position)
            self._first[key] = next((c for c in calls if self._reaches(c, function, names, depth)), None)
        return self._first[key]

    def _reaches(self, call: ast.Call, caller: FunctionNode, names: frozenset[str], depth: int) -> bool:
        if named(call, names):
            return True
        return bool(depth) and any(
            self.first_call(f, names, depth - 1) for f in self.resolve(call.func) if f is not caller
        )

    def makes_context_current(self, function: FunctionNode) -> bool:
        """Whether `function` (or a function of ours it calls) pushes a context or imports one."""
        if self.first_call(function, PUSHES) is not None:
            return True
        return any(
            m in CONTEXT_IMPORTS
            for n in self.nodes_of(function)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for m in imported_modules(n)
        )

    @cached_property
    def contextless_workers(self) -> list[tuple[FunctionNode, ast.Call]]:
        """Thread functions that do CUDA work without making a context current, with that work."""
        found = []
        for f in self.thread_functions:
            work = self.first_call(f, CUDA_WORK)
            if work is not None and not self.makes_context_current(f):
                found.append((f, work))
        return found
