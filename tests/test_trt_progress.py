"""Build progress: the state model fed with TensorRT-style events, its renderers, and cancel."""

from __future__ import annotations

import _thread
import io
import threading

import pytest

from helpers.trt.progress import (
    Job,
    ProgressState,
    TextBar,
    WidgetBar,
    finish,
    in_notebook,
    make_renderer,
    text_line,
)


def nested() -> ProgressState:
    state = ProgressState()
    state.phase_start("Building Engine", None, 4)
    state.step_complete("Building Engine", 0)
    state.phase_start("Tactic selection", "Building Engine", 2)
    state.step_complete("Tactic selection", 0)
    return state


def test_fraction_refines_the_top_phase_with_its_open_child():
    state = ProgressState()
    assert state.fraction() == 0.0
    state.phase_start("Building Engine", None, 4)
    state.step_complete("Building Engine", 0)
    assert state.fraction() == pytest.approx(0.25)
    state.phase_start("Tactic selection", "Building Engine", 2)
    state.step_complete("Tactic selection", 0)
    assert state.fraction() == pytest.approx((1 + 0.5) / 4)
    state.phase_finish("Tactic selection")
    state.step_complete("Building Engine", 1)
    assert state.fraction() == pytest.approx(0.5)
    state.phase_finish("Building Engine")
    assert state.fraction() == 1.0 and state.phases() == []


def test_phases_nest_depth_first_and_describe():
    state = nested()
    assert [(p.name, p.depth, p.done, p.steps) for p in state.phases()] == [
        ("Building Engine", 0, 1, 4),
        ("Tactic selection", 1, 1, 2),
    ]
    assert state.describe() == "Building Engine 1/4 > Tactic selection 1/2"


def test_finishing_a_phase_closes_its_children_and_steps_past_the_end_are_capped():
    state = nested()
    state.phase_start("Layer fusion", "Tactic selection", 0)
    state.step_complete("Tactic selection", 7)
    assert state.phases()[1].done == 2
    state.phase_finish("Tactic selection")
    assert [p.name for p in state.phases()] == ["Building Engine"]
    assert state.step_complete("never started", 0) is True


def test_cancel_makes_step_complete_return_false():
    state = nested()
    assert state.step_complete("Tactic selection", 1) is True
    state.cancel()
    assert state.cancelled
    assert state.step_complete("Tactic selection", 1) is False
    assert state.describe().startswith("cancelling (")


def in_threads(fn, n: int) -> None:
    """fn(0) .. fn(n - 1), each on a thread of its own, all started before any is joined."""
    threads = [threading.Thread(target=fn, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_state_is_consistent_under_concurrent_events():
    state = ProgressState()
    state.phase_start("root", None, 1000)
    errors = []

    def worker(offset: int) -> None:
        try:
            for i in range(offset, 1000, 8):
                state.phase_start(f"child{offset}", "root", 10)
                state.step_complete("root", i)
                state.step_complete(f"child{offset}", 5)
                state.phase_finish(f"child{offset}")
                state.describe()
                state.fraction()
        except Exception as exc:  # any race shows up as an exception or a wrong count
            errors.append(exc)

    in_threads(worker, 8)
    assert errors == []
    assert [p.name for p in state.phases()] == ["root"]
    assert state.phases()[0].done == 1000


def test_text_bar_draws_in_place_and_closes_with_a_message():
    out = io.StringIO()
    state = ProgressState()
    bar = TextBar(state, out, interval=0.0)
    state.phase_start("Building Engine", None, 4)
    state.step_complete("Building Engine", 1)
    drawn = out.getvalue()
    assert drawn.startswith("\r[")
    assert "[###############...............]  50% Building Engine 2/4" in drawn
    bar.close(state, "built x.plan")
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert last.endswith("\n") and last.rstrip().endswith("50% Building Engine 2/4 built x.plan")


def test_text_bar_throttles_redraws():
    out = io.StringIO()
    state = ProgressState()
    TextBar(state, out, interval=3600)
    state.phase_start("Building Engine", None, 100)
    for i in range(100):
        state.step_complete("Building Engine", i)
    assert out.getvalue().count("\r") == 1


def test_text_line_is_bounded():
    state = ProgressState()
    state.phase_start("x" * 300, None, 2)
    assert len(text_line(state)) == 100


def test_widget_bar_follows_state_and_its_button_cancels():
    state = nested()
    bar = WidgetBar(state, show=False, interval=0.0)
    bar.update(state)
    assert bar.bar.value == pytest.approx(0.375)
    assert bar.label.value == "Building Engine 1/4 > Tactic selection 1/2"
    bar.button.click()
    assert state.cancelled
    assert bar.button.disabled
    assert state.step_complete("Tactic selection", 1) is False
    bar.close(state, "cancelled")
    assert bar.bar.bar_style == "danger" and bar.label.value == "cancelled"


def test_outside_jupyter_the_text_bar_is_chosen():
    assert in_notebook() is False
    assert isinstance(make_renderer(ProgressState()), TextBar)
    assert isinstance(make_renderer(ProgressState(), notebook=False), TextBar)


def test_job_returns_result_and_reraises_errors():
    assert Job(lambda: 42, ProgressState()).wait() == 42

    def fail() -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        Job(fail, ProgressState()).wait()


def test_ctrl_c_while_waiting_cancels_instead_of_abandoning_the_build():
    state = ProgressState()
    ready, waiting, cancelled = threading.Event(), threading.Event(), threading.Event()
    state.subscribe(lambda s: cancelled.set() if s.cancelled else None)

    def build() -> str:
        ready.wait(10)
        waiting.wait(10)  # the main thread is inside wait()
        _thread.interrupt_main()  # what Ctrl-C / Jupyter's interrupt does to the waiting thread
        return "cancelled" if cancelled.wait(10) else "not cancelled"

    job = Job(build, state)
    real_wait = job._finished.wait

    def watched(timeout: float | None = None) -> bool:
        waiting.set()
        return real_wait(timeout)

    job._finished.wait = watched  # type: ignore[method-assign]
    ready.set()
    assert job.wait() == "cancelled"
    assert job.done()


def test_a_failing_display_is_dropped_and_never_cancels_the_build():
    """A closed widget comm raising in a listener must not turn into step_complete() == False."""
    state = ProgressState()
    seen = []

    def broken(_state):
        raise RuntimeError("comm closed")

    state.subscribe(broken)
    state.subscribe(lambda s: seen.append(s.describe()))
    state.phase_start("Building Engine", None, 2)
    assert state.step_complete("Building Engine", 0) is True
    assert state.step_complete("Building Engine", 1) is True
    assert state.listener_error == "RuntimeError: comm closed"
    assert seen[-1] == "Building Engine 2/2"  # the healthy listener still hears every event


def test_finish_warns_about_a_failed_display_instead_of_raising():
    state = ProgressState()

    class Closed:
        def close(self, state, message):
            raise OSError("widget gone")

    with pytest.warns(UserWarning, match="progress display failed .*widget gone"):
        finish(Closed(), state, "built x.plan")
    finish(None, ProgressState(), "built x.plan")  # no display, no failure: silent


def test_two_builder_threads_failing_the_same_listener_never_cancel():
    """TensorRT calls the monitor from several threads: both see the listener fail, one removes it."""
    state = ProgressState()
    both_inside = threading.Barrier(2, timeout=5)

    def broken(_state):
        both_inside.wait()  # the two calls fail together, before either removed it
        raise RuntimeError("comm closed")

    state.phase_start("Building Engine", None, 4)
    state.subscribe(broken)
    results: list[bool] = []
    errors: list[BaseException] = []

    def step(i: int) -> None:
        try:
            results.append(state.step_complete("Building Engine", i))
        except BaseException as exc:  # the old double remove raised ValueError here
            errors.append(exc)

    in_threads(step, 2)
    assert not errors and results == [True, True]
    assert state.listener_error == "RuntimeError: comm closed"
