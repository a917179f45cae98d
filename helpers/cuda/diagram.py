"""A picture of threads, their context stacks and the device's contexts, for notebook 03.

Top: the SCRFD report's setup (pycuda.autoinit on the main thread, inference in a worker).
Bottom: the primary context everywhere, where no private context exists at all. The panels
are stacked, not side by side, so the figure stays 10 inches wide and its text readable where
a notebook shows it at its own size. Drawn with matplotlib, imported only when called.
"""

from __future__ import annotations

from typing import Any

FONT = 11  # points: about 15 px at the figure's 100 dpi
PRIVATE = ("private context A", "made by `import pycuda.autoinit`\n(cuCtxCreate)", "#f4b183")
PRIMARY = (
    "primary context P",
    "the CUDA runtime's: TensorRT, torch,\ncupy, pycuda.autoprimaryctx",
    "#9dc3e6",
)
WORKER_NOTE = "starts with an empty stack; its first CUDA\nruntime call (TensorRT's) makes P current"
FIX_NOTE = "starts with an empty stack; it pushes P (or\ncalls cudaSetDevice(n)) before any CUDA call"
MAIN_NOTE = "stream S, buffers X, Y and the engine\nare made here, in this context"


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, **kw: Any) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", fc=color, ec="0.3")
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=FONT, **kw)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Right from `start`, then down into `end`: clear of the text under the start."""
    style = {
        "arrowstyle": "->",
        "color": "0.3",
        "lw": 1.6,
        "connectionstyle": "angle,angleA=0,angleB=90,rad=0",
    }
    ax.annotate("", end, start, arrowprops=style)


def _panel(ax: Any, title: str, main: tuple[str, str, str], worker_note: str, verdict: str, ok: bool) -> None:
    """Two threads (top), an arrow from each to the context it has current, GPU 0's contexts,
    and what execute_async_v3 does (bottom). Only contexts that exist are drawn: with `main`
    the primary context, GPU 0 holds P alone."""
    ax.set(xlim=(0, 20), ylim=(0, 10))
    ax.set_title(title, fontsize=FONT + 2, loc="left")
    ax.axis("off")
    for x, thread, entry, note in (
        (0.3, "main thread", main, MAIN_NOTE),
        (10.3, "worker thread", PRIMARY, worker_note),
    ):
        _box(ax, x, 6.4, 9.4, 3.4, "", "white")
        ax.text(x + 0.3, 9.4, f"{thread}: its context stack", fontsize=FONT, weight="bold", va="center")
        _box(ax, x + 0.4, 7.8, 6.2, 1.1, f"{entry[0]}  ← current", entry[2])
        ax.text(x + 0.4, 7.05, note, fontsize=FONT - 1, va="center", color="0.2")
    _box(ax, 0.3, 1.5, 19.4, 3.9, "", "#f2f2f2")
    ax.text(0.7, 5.0, "GPU 0: the contexts that exist", fontsize=FONT, weight="bold", va="center")
    spans = ((0.8, 8.9), (10.3, 8.9)) if main is PRIVATE else ((0.8, 18.4),)
    contexts = (PRIVATE, PRIMARY) if main is PRIVATE else (PRIMARY,)
    for (x, w), (name, made_by, color) in zip(spans, contexts, strict=True):
        _box(ax, x, 1.8, w, 2.7, f"{name}\n{made_by}", color)
    for x in (0.3, 10.3):  # from each thread's current context down to that context
        _arrow(ax, (x + 6.6, 8.35), (x + 8.2, 4.5))
    colour = "darkgreen" if ok else "darkred"
    ax.text(10, 0.55, verdict, ha="center", va="center", fontsize=FONT, color=colour,
            bbox={"fc": "white", "ec": colour, "pad": 4})  # fmt: skip


def context_diagram() -> Any:
    """The figure: the failure (top) and the primary-context fix (bottom)."""
    import matplotlib.pyplot as plt

    fig, (bad, good) = plt.subplots(2, 1, figsize=(10, 9.6), layout="constrained")
    _panel(
        bad,
        "The SCRFD report: pycuda.autoinit + a worker thread",
        PRIVATE,
        WORKER_NOTE,
        "execute_async_v3(S.handle) in the worker: its kernels run in P (inferred),\n"
        "the stream S belongs to A  →  invalid resource handle, outputs never written",
        ok=False,
    )
    _panel(
        good,
        "The fix: the primary context everywhere (no private context exists)",
        PRIMARY,
        FIX_NOTE,
        "execute_async_v3(S.handle) in the worker: kernels and stream both in P  →  runs",
        ok=True,
    )
    return fig
