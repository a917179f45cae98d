"""A build progress bar that works in a notebook and a terminal, and can cancel the build.

TensorRT reports nested phases through `IProgressMonitor` from its own threads. The monitor
only forwards those events to `ProgressState`, a plain thread-safe model (phases, nesting,
fraction done, cancel flag) that the renderers draw: an ipywidgets bar with a Cancel button
in Jupyter, a one-line text bar elsewhere.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

from helpers.trt.runtime import load_tensorrt

if TYPE_CHECKING:
    import tensorrt as trt


@dataclass
class Phase:
    name: str
    parent: str | None
    steps: int
    done: int = 0


@dataclass(frozen=True)
class PhaseView:
    """One open phase as a renderer sees it."""

    name: str
    depth: int
    done: int
    steps: int


class ProgressState:
    """The build's open phases and whether the user asked to cancel; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Phase] = {}
        self._finished = 0
        self._cancelled = False
        self._listeners: list[Callable[[ProgressState], None]] = []
        self.listener_error = ""  # the last listener failure, once one was dropped

    def subscribe(self, listener: Callable[[ProgressState], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _changed(self) -> None:
        """Tell each listener; one that raises (a closed widget, say) is dropped, never the build.

        TensorRT's monitor trampoline turns any exception into a cancelled build, and calls from
        several builder threads: two may see the same listener fail, and only one removes it.
        """
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self)
            except Exception as exc:
                with self._lock:
                    if listener in self._listeners:
                        self._listeners.remove(listener)
                    self.listener_error = f"{type(exc).__name__}: {exc}"

    def phase_start(self, name: str, parent: str | None, steps: int) -> None:
        with self._lock:
            self._open[name] = Phase(name, parent if parent in self._open else None, max(steps, 0))
        self._changed()

    def step_complete(self, name: str, step: int) -> bool:
        """Record step `step` (0-based) as done; False means "cancel", as TensorRT expects."""
        with self._lock:
            phase = self._open.get(name)
            if phase is not None:
                phase.done = max(phase.done, min(step + 1, phase.steps))  # never backwards
            keep_going = not self._cancelled
        self._changed()
        return keep_going

    def phase_finish(self, name: str) -> None:
        """Close a phase and any child still open (TensorRT may finish before the last step)."""
        with self._lock:
            closing = {name}
            for phase in list(self._open.values()):
                if phase.parent in closing or phase.name in closing:
                    closing.add(phase.name)
                    del self._open[phase.name]
                    self._finished += 1
        self._changed()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
        self._changed()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def phases(self) -> list[PhaseView]:
        """Open phases, each followed by its children (depth-first)."""
        with self._lock:
            phases = list(self._open.values())

        def walk(parent: str | None, depth: int) -> list[PhaseView]:
            views = []
            for p in phases:
                if p.parent == parent:
                    views.append(PhaseView(p.name, depth, p.done, p.steps))
                    views.extend(walk(p.name, depth + 1))
            return views

        return walk(None, 0)

    def fraction(self) -> float:
        """Overall fraction done: the top phase's steps, refined by its newest open child."""
        with self._lock:
            phases = list(self._open.values())
            finished = self._finished

        def frac(phase: Phase) -> float:
            if phase.steps == 0:
                return 0.0
            children = [p for p in phases if p.parent == phase.name]
            inner = frac(children[-1]) if children else 0.0
            return min(1.0, (phase.done + inner) / phase.steps)

        roots = [p for p in phases if p.parent is None]
        if not roots:
            return 1.0 if finished else 0.0
        return frac(roots[0])

    def describe(self) -> str:
        """'Building Engine 2/5 > Tactic selection 12/40', or 'cancelling' once asked."""
        parts = [f"{v.name} {v.done}/{v.steps}" if v.steps else v.name for v in self.phases()]
        text = " > ".join(parts)
        return f"cancelling ({text})" if self.cancelled and text else text


def text_line(state: ProgressState, width: int = 30) -> str:
    filled = round(state.fraction() * width)
    percent = round(state.fraction() * 100)
    return f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {state.describe()}"[:100]


class _Throttle:
    """Lets a redraw through only when its text changed and `interval` seconds have passed.

    TensorRT reports thousands of tactic steps from several threads; drawing each would flood
    the terminal or the notebook's comm channel.
    """

    def __init__(self, interval: float):
        self._interval = interval
        self._lock = threading.Lock()
        self._last_time = -float("inf")  # the first event is drawn at once
        self._last_text = ""

    def due(self, text: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if text == self._last_text or now - self._last_time < self._interval:
                return False
            self._last_time, self._last_text = now, text
            return True


class TextBar:
    """A one-line bar redrawn in place on a terminal."""

    def __init__(self, state: ProgressState, stream: TextIO = sys.stderr, interval: float = 0.1):
        self._stream = stream
        self._throttle = _Throttle(interval)
        state.subscribe(self.update)

    def update(self, state: ProgressState) -> None:
        line = text_line(state)
        if self._throttle.due(line):
            self._stream.write("\r" + line.ljust(100))
            self._stream.flush()

    def close(self, state: ProgressState, message: str) -> None:
        self._stream.write("\r" + f"{text_line(state)[:60]} {message}".ljust(100) + "\n")
        self._stream.flush()


class WidgetBar:
    """An ipywidgets bar with a Cancel button.

    A click reaches the kernel only while no cell is running, so for the button to work start
    the build with `helpers.trt.build.start_build` and wait on the job in a later cell; the
    kernel's interrupt button cancels a build that is being waited on, either way.
    """

    def __init__(self, state: ProgressState, show: bool = True, interval: float = 0.1):
        import ipywidgets as widgets

        self._throttle = _Throttle(interval)
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="Build")
        self.label = widgets.Label(value="starting")
        self.button = widgets.Button(description="Cancel build", button_style="warning")
        self.button.on_click(lambda _button: state.cancel())
        self.box = widgets.HBox([self.bar, self.button, self.label])
        state.subscribe(self.update)
        if show:
            from IPython.display import display

            display(self.box)

    def update(self, state: ProgressState) -> None:
        if self._throttle.due(text_line(state)):
            self._draw(state)

    def _draw(self, state: ProgressState) -> None:
        self.bar.value = state.fraction()
        self.label.value = state.describe()
        self.button.disabled = state.cancelled

    def close(self, state: ProgressState, message: str) -> None:
        self._draw(state)
        self.bar.bar_style = "danger" if state.cancelled else "success"
        self.button.disabled = True
        self.label.value = message


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel attached), not in a plain IPython shell."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def make_renderer(state: ProgressState, notebook: bool | None = None) -> TextBar | WidgetBar:
    use_widgets = in_notebook() if notebook is None else notebook
    return WidgetBar(state) if use_widgets else TextBar(state)


def finish(renderer: TextBar | WidgetBar | None, state: ProgressState, message: str) -> None:
    """Close the bar with `message`; a display that fails (or failed during the build) only warns."""
    if renderer is not None:
        try:
            renderer.close(state, message)
        except Exception as exc:
            state.listener_error = f"{type(exc).__name__}: {exc}"
    if state.listener_error:
        warnings.warn(f"the build progress display failed ({state.listener_error})", stacklevel=2)


def make_monitor(state: ProgressState) -> trt.IProgressMonitor:
    """A TensorRT progress monitor that forwards every event to `state`.

    Keep the returned object alive for the whole build: TensorRT does not own it.
    """
    load_tensorrt()
    import tensorrt as trt

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            state.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return state.step_complete(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            state.phase_finish(phase_name)

    return _Monitor()


T = TypeVar("T")


class Job(Generic[T]):
    """Runs a build in a worker thread so the caller stays responsive and can cancel it.

    `wait()` turns Ctrl-C (or Jupyter's interrupt button) into a cancel request and keeps
    waiting, so TensorRT stops at its next step and nothing is left half-built.
    """

    def __init__(self, work: Callable[[], T], state: ProgressState):
        self.state = state
        self._result: list[T] = []  # one element once the work returned
        self._error: BaseException | None = None
        # An Event, not Thread.is_alive(): a KeyboardInterrupt inside Thread.join() can leave
        # is_alive() False while the thread still runs (seen on CPython 3.11).
        self._finished = threading.Event()
        threading.Thread(target=self._run, args=(work,), name="trt-build", daemon=True).start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._result.append(work())
        except BaseException as exc:  # handed to the waiting thread, re-raised there
            self._error = exc
        finally:
            self._finished.set()

    def done(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        self.state.cancel()

    def wait(self) -> T:
        while not self._finished.is_set():
            try:
                self._finished.wait(0.2)
            except KeyboardInterrupt:
                self.state.cancel()
        if self._error is not None:
            raise self._error
        return self._result[0]
