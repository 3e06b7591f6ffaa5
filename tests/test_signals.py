"""Stop requests (``tiktok_corpus._signals``): one stop per request, however often it is delivered, and a
clean-up that a repeat does not cut short; a stop asked for again later still cuts it."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from tiktok_corpus import _signals


@pytest.fixture(autouse=True)
def fresh_stops(monkeypatch):
    """No stop accepted yet, and the process's own handlers back afterwards."""
    monkeypatch.setattr(_signals, "_stops", _signals._Stops())
    handlers = {number: signal.getsignal(number) for number in _signals.STOP_SIGNALS}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)


def _stage(cleaned: list[str]):
    async def stage() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the stop: `docker stop`, `timeout`
            await asyncio.Event().wait()  # a stage at work, until the stop cancels it
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # timeout(1)'s second delivery, to the process group
            os.kill(os.getpid(), signal.SIGINT)  # and a Ctrl-C pressed at once
            # the clean-up's writes, on the database thread (claims given back, the run closed)
            await asyncio.get_running_loop().run_in_executor(None, cleaned.append, "claims given back")

    return stage()


def test_a_stop_delivered_again_while_a_stage_cleans_up_stops_it_once_and_lets_it_finish():
    """A crawl under ``timeout 5`` got SIGTERM twice; the second KeyboardInterrupt landed in the clean-up
    and left its parents claimed and its run ``running``. The repeats are dropped; the stop still ends
    the command as a Ctrl-C does."""
    cleaned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _signals.run_stoppable(_stage(cleaned))
    assert cleaned == ["claims given back"]


def test_a_stop_asked_for_again_after_the_window_cuts_the_clean_up_short(monkeypatch):
    """Ctrl-C pressed again once the first stop has had its moment is a new stop: the user wants out now
    (what is left is taken back at the next start, as after kill -9)."""
    monkeypatch.setattr(_signals, "REPEAT_WINDOW_S", 0.0)
    cleaned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        _signals.run_stoppable(_stage(cleaned))
    assert cleaned == []


def test_the_handlers_of_the_process_come_back_after_an_event_loops_stage():
    """The CLI's handlers hold before and after an asyncio stage: the demo runs the crawl, then export and
    training on the same process, which a SIGTERM must still stop as a Ctrl-C."""
    _signals.install()

    async def stage() -> str:
        return "done"

    assert _signals.run_stoppable(stage()) == "done"
    assert signal.getsignal(signal.SIGTERM) is _signals._raise_stop
    assert signal.getsignal(signal.SIGINT) is _signals._raise_stop


def test_the_clis_handler_raises_once_per_stop():
    """``corpus export`` (no event loop) under ``timeout``: one KeyboardInterrupt for the two SIGTERMs,
    so the second does not land in the export's clean-up."""
    _signals.install()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode
    os.kill(os.getpid(), signal.SIGTERM)  # the repeat: dropped, nothing raised
    os.kill(os.getpid(), signal.SIGINT)


def test_a_stop_met_in_a_stages_last_stretch_without_an_await_still_stops_the_command():
    """The crawl's end (the database thread joined, the run's row written) has no await left to take a
    cancel at: the stage returned its summary and the demo went on to its next stage."""

    async def stage() -> str:
        await asyncio.sleep(0)  # a yield, not a wait: the stage has been at work on the loop before its end
        os.kill(os.getpid(), signal.SIGTERM)  # lands while the last writes run, synchronously
        return "summary"

    with pytest.raises(KeyboardInterrupt):
        _signals.run_stoppable(stage())


def test_a_later_stop_cuts_short_a_clean_up_that_blocks_the_loop(monkeypatch):
    """A clean-up joining a stuck thread holds the event loop: a second Ctrl-C must still end it (a
    handler of the loop's own would wait for the join)."""
    monkeypatch.setattr(_signals, "REPEAT_WINDOW_S", 0.0)
    stuck = threading.Event()

    async def stage() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.wait_for(asyncio.Event().wait(), timeout=30)  # the stop's cancel ends it: fail, not hang
        finally:
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()  # pressed again
            stuck.wait(timeout=60)  # a database thread stuck on a lock, joined

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _signals.run_stoppable(stage())
    assert time.monotonic() - started < 30 and not stuck.is_set()


def test_a_stop_signal_the_process_started_with_ignored_stays_ignored():
    """``nohup corpus ...``, or ``corpus ... &`` in a script: the job outlives the script's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _signals.install()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is _signals._raise_stop


def test_a_stop_meeting_the_handlers_restore_still_puts_every_one_back(monkeypatch):
    """Another thread takes the signal and its handler runs on the main thread at the next bytecode, in
    the middle of the swap back: the handler not yet restored stayed the run's, and a later Ctrl-C met
    a closed event loop ("RuntimeError: Event loop is closed") instead of stopping the command."""
    real_swap, met = signal.signal, []

    def swap_met_by_a_stop(number, handler):
        if not met:
            met.append(number)
            raise KeyboardInterrupt  # the stop's handler ran here
        return real_swap(number, handler)

    monkeypatch.setattr(_signals.signal, "signal", swap_met_by_a_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            _signals._restore({signal.SIGINT: _signals._raise_stop, signal.SIGTERM: _signals._raise_stop})
    finally:
        monkeypatch.undo()  # the signal module's own swap back before anything else swaps
    assert signal.getsignal(signal.SIGINT) is signal.getsignal(signal.SIGTERM) is _signals._raise_stop


def test_the_runs_handler_met_after_its_loop_closed_stops_the_command(monkeypatch):
    monkeypatch.setattr(_signals, "REPEAT_WINDOW_S", 0.0)
    seen = {}

    async def stage() -> None:
        seen["handler"] = signal.getsignal(signal.SIGINT)

    _signals.run_stoppable(stage())
    with pytest.raises(KeyboardInterrupt):
        seen["handler"](signal.SIGINT, None)  # left installed by a stop that met the restore
