"""SIGINT / SIGTERM become a cooperative cancel flag; the old handlers come back (issue 16).

The signals are real: os.kill on this test process. Python runs the handler in the main thread between two
bytecodes, so the flag is set by the time os.kill returns.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from a124_core.interrupts import CancelFlag, RunInterrupted, cancel_on_signals, resume_hint

DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@pytest.fixture(autouse=True)
def default_handlers():
    """Start from Python's own handlers (a shell's background job starts with SIGINT ignored)."""
    old = {sig: signal.signal(sig, handler) for sig, handler in DEFAULTS.items()}
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_sets_the_flag_only(sig):
    seen = []
    with cancel_on_signals(notice=seen.append) as flag:
        assert not flag()
        os.kill(os.getpid(), sig)
        assert flag() and flag.signal_name == sig.name and seen == [sig.name]
        with pytest.raises(RunInterrupted, match=f"{sig.name} received during render"):
            flag.check("render")


def test_second_signal_stops_at_once():
    with pytest.raises(KeyboardInterrupt, match="second signal"), cancel_on_signals(notice=None):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)


def test_previous_handlers_are_restored_after_success_and_error():
    def mine(signum, frame):
        raise AssertionError("must not be called")

    old = signal.signal(signal.SIGTERM, mine)
    before = signal.getsignal(signal.SIGINT)
    try:
        with cancel_on_signals(notice=None):
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is before
        with pytest.raises(RuntimeError), cancel_on_signals(notice=None):
            raise RuntimeError
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGTERM, old)
    with pytest.raises(KeyboardInterrupt):  # Python's own SIGINT behaviour is back
        os.kill(os.getpid(), signal.SIGINT)


def test_ignored_signals_stay_ignored():
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with cancel_on_signals(notice=None) as flag:
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            assert not flag()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, old)


def test_outside_the_main_thread_nothing_is_installed():
    result = {}

    def worker():
        with cancel_on_signals() as flag:
            result["flag"] = flag
            result["handler"] = signal.getsignal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert isinstance(result["flag"], CancelFlag) and not result["flag"]()
    assert result["handler"] is before


def test_resume_hint():
    assert resume_hint("coarse", 412) == "interrupted at coarse step 412: rerun the same command with --resume"
