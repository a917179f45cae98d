"""A picture of threads, their context stacks and the device's contexts, for notebook 03.

Left: the SCRFD report's setup (pycuda.autoinit on the main thread, inference in a worker).
Right: the primary context everywhere. Drawn with matplotlib, imported only when called.
"""

from __future__ import annotations

from typing import Any

PRIVATE = ("private context A", "made by `import pycuda.autoinit`\n(cuCtxCreate)", "#f4b183")
PRIMARY = (
    "primary context P",
    "the CUDA runtime's: TensorRT, torch,\ncupy, pycuda.autoprimaryctx",
    "#9dc3e6",
)


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, **kw: Any) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", fc=color, ec="0.3")
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5, **kw)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], color: str = "0.3") -> None:
    ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": color, "lw": 1.4})


def _panel(ax: Any, title: str, main: tuple[str, str, str], verdict: str, ok: bool) -> None:
    ax.set(xlim=(0, 10), ylim=(0, 10), title=title)
    ax.axis("off")
    for x, thread, entry, note in (
        (0.3, "main thread", main, "stream S, buffers X, Y,\nengine made here"),
        (
            5.3,
            "worker thread",
            PRIMARY,
            "starts with an empty stack; the first\nruntime call makes P current",
        ),
    ):
        ax.text(x + 2.2, 9.6, thread, ha="center", fontsize=10, weight="bold")
        _box(ax, x, 6.9, 4.4, 2.3, "", "white")
        ax.text(x + 2.2, 8.85, "context stack", ha="center", fontsize=8, color="0.4")
        _box(ax, x + 0.3, 7.2, 3.8, 1.2, f"{entry[0]}  <- current", entry[2])
        ax.text(x + 2.2, 6.35, note, ha="center", va="center", fontsize=8, color="0.25")
    _box(ax, 0.3, 0.4, 9.4, 3.6, "", "#f2f2f2")
    ax.text(5, 3.65, "GPU 0", ha="center", fontsize=9, weight="bold")
    for x, (name, made_by, color) in ((0.6, PRIVATE), (5.2, PRIMARY)):
        _box(ax, x, 0.7, 4.2, 2.5, f"{name}\n{made_by}", color)
    main_x = 2.7 if main is PRIVATE else 7.3
    _arrow(ax, (2.5, 5.8), (main_x, 3.2))
    _arrow(ax, (7.5, 5.8), (7.3, 3.2))
    ax.text(5, 4.75, verdict, ha="center", va="center", fontsize=9, color="darkgreen" if ok else "darkred",
            bbox={"fc": "white", "ec": "darkgreen" if ok else "darkred"})  # fmt: skip


def context_diagram() -> Any:
    """The figure: the failure (left) and the primary-context fix (right)."""
    import matplotlib.pyplot as plt

    fig, (bad, good) = plt.subplots(1, 2, figsize=(13, 5.2))
    _panel(
        bad,
        "pycuda.autoinit + a worker thread (the SCRFD report)",
        PRIVATE,
        "execute_async_v3(S.handle) in the worker:\nkernels in P, stream S of A -> invalid resource handle",
        ok=False,
    )
    _panel(
        good,
        "primary context everywhere (CudaContext.primary())",
        PRIMARY,
        "execute_async_v3(S.handle) in the worker:\nkernels and stream both in P -> runs",
        ok=True,
    )
    fig.tight_layout()
    return fig
