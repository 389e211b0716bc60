"""Eager handler start: the first step runs at once, and a suspended handler continues in a
Task that behaves like any other (timeouts, task groups, cancellation, context)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from tether._dispatch._eager import start_eagerly

_var: contextvars.ContextVar[str] = contextvars.ContextVar("_var", default="unset")


async def test_a_coroutine_that_never_suspends_finishes_before_start_returns() -> None:
    """A handler with no await that suspends runs to completion inside the call: no Task."""
    ran: list[str] = []

    async def handler() -> None:
        ran.append("done")

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is None
    assert ran == ["done"]


async def test_a_suspended_coroutine_continues_in_a_task_with_its_context() -> None:
    """Context set in the first step is seen after the suspension, and does not leak out."""
    seen: list[str] = []
    gate = asyncio.get_running_loop().create_future()

    async def handler() -> None:
        _var.set("inside")
        await gate
        seen.append(_var.get())

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    assert not task.done()
    assert _var.get() == "unset"
    gate.set_result(None)
    await task
    assert seen == ["inside"]


async def test_the_current_task_is_set_during_the_first_step_and_restored_after() -> None:
    """asyncio.current_task() is usable in the first step; the caller's task is current again after."""
    outer = asyncio.current_task()
    during: list[object] = []

    async def handler() -> None:
        during.append(asyncio.current_task())

    assert start_eagerly(asyncio.get_running_loop(), handler()) is None
    assert during[0] is not None
    assert during[0] is not outer
    assert asyncio.current_task() is outer


async def test_asyncio_timeout_entered_in_the_first_step_fires_after_suspension() -> None:
    """asyncio.timeout() in a handler raises TimeoutError when it expires while suspended."""
    outcome: list[str] = []

    async def handler() -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            outcome.append("timed out")

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    await task
    assert outcome == ["timed out"]
    assert task.cancelling() == 0


async def test_a_timeout_that_does_not_expire_leaves_the_handler_alone() -> None:
    """An unexpired asyncio.timeout() entered eagerly exits cleanly and the handler finishes."""

    finished: list[str] = []

    async def handler() -> None:
        async with asyncio.timeout(10):
            await asyncio.sleep(0)
        finished.append("finished")

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    await task
    assert finished == ["finished"]


async def test_a_task_group_started_eagerly_collects_its_children() -> None:
    """A TaskGroup opened in the first step waits for its children and propagates failures."""

    async def child() -> None:
        await asyncio.sleep(0)
        raise ValueError("child failed")

    async def handler() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(child())
            await asyncio.sleep(10)

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    with pytest.raises(ExceptionGroup):
        await task


async def test_cancelling_the_returned_task_cancels_the_coroutine_where_it_waits() -> None:
    """The returned Task's cancel() throws CancelledError into the handler at its await."""
    cleanup: list[str] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleanup.append("finally ran")

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleanup == ["finally ran"]


async def test_an_exception_in_the_first_step_propagates_to_the_caller() -> None:
    """A handler that raises before suspending raises out of start_eagerly."""

    async def handler() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        start_eagerly(asyncio.get_running_loop(), handler())
    assert asyncio.current_task() is not None  # the caller's task is current again


async def test_a_cancel_requested_during_the_first_step_reaches_the_continuing_task() -> None:
    """current_task().cancel() called in the first step cancels the handler once it suspends."""

    async def handler() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(10)

    task = start_eagerly(asyncio.get_running_loop(), handler())
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_started_from_a_plain_callback_no_task_is_left_current() -> None:
    """From a protocol-style callback (no current task) the stand-in is removed after the step."""
    loop = asyncio.get_running_loop()
    after: list[object] = []
    gate = loop.create_future()

    async def handler() -> None:
        await gate

    def callback() -> None:
        task = start_eagerly(loop, handler())
        after.append(asyncio.current_task(loop))
        assert task is not None
        gate.set_result(None)

    done = loop.create_future()

    def run_then_signal() -> None:
        callback()
        done.set_result(None)

    loop.call_soon(run_then_signal)
    await done
    assert after == [None]


async def test_a_first_step_may_start_another_eagerly() -> None:
    """A handler's first step that starts another coroutine eagerly (a nested delivery)
    runs both to completion; the inner one does not disturb the outer one's driver."""
    loop = asyncio.get_running_loop()
    order: list[str] = []

    async def inner() -> None:
        order.append("inner")

    async def outer() -> None:
        order.append("outer start")
        assert start_eagerly(loop, inner()) is None
        order.append("outer end")

    assert start_eagerly(loop, outer()) is None
    assert order == ["outer start", "inner", "outer end"]
    assert start_eagerly(loop, inner()) is None  # the shared driver still works
    assert order[-1] == "inner"


async def test_eager_steps_keep_working_after_one_raised_and_one_suspended() -> None:
    """An exception in one first step and a suspension in another do not break later
    eager starts (each gets a working driver)."""
    loop = asyncio.get_running_loop()
    gate = loop.create_future()
    done: list[int] = []

    async def fails() -> None:
        raise ValueError("boom")

    async def waits() -> None:
        await gate
        done.append(1)

    async def quick() -> None:
        done.append(2)

    with pytest.raises(ValueError, match="boom"):
        start_eagerly(loop, fails())
    task = start_eagerly(loop, waits())
    assert task is not None
    assert start_eagerly(loop, quick()) is None
    gate.set_result(None)
    await task
    assert done == [2, 1]


def test_each_thread_runs_eager_steps_on_its_own_loop() -> None:
    """Event loops in several threads start handlers eagerly at the same time without
    sharing a driver."""
    import threading

    results: list[int] = []

    async def run_many() -> None:
        loop = asyncio.get_running_loop()
        count = [0]

        async def step() -> None:
            count[0] += 1
            await asyncio.sleep(0)
            count[0] += 1

        tasks = [start_eagerly(loop, step()) for _ in range(200)]
        await asyncio.gather(*(t for t in tasks if t is not None))
        results.append(count[0])

    threads = [threading.Thread(target=asyncio.run, args=(run_many(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [400] * 4


async def test_a_finished_coroutine_is_not_kept_by_the_idle_driver() -> None:
    """Once a first step finished, nothing of it stays referenced (a request lent as a
    view is released at once, not when the next call comes)."""
    import weakref

    async def handler() -> None:
        return None

    coro = handler()
    ref = weakref.ref(coro)
    assert start_eagerly(asyncio.get_running_loop(), coro) is None
    del coro
    assert ref() is None
