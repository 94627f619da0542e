"""Ctrl+C and SIGTERM as a cooperative cancel: the training loop stops between steps and saves a checkpoint.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be (inside a UNet call, in the
middle of a checkpoint write), which loses the stage's progress and prints a traceback. Inside
`cancel_on_signals()` the first SIGINT/SIGTERM only sets a flag; the loop polls it through its
`should_cancel` callback before each step, writes `<stage>_latest.safetensors` and raises `TrainingCancelled`.
A second signal means "stop now" and raises KeyboardInterrupt at once (atomic writes keep every file whole).
The previous handlers are restored on exit.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """Raised by `CancelFlag.check` between phases that do not poll the flag themselves."""


def resume_hint(stage: str, step: int) -> str:
    """The line a runner prints after a cancelled stage."""
    return f"interrupted at {stage} step {step}: rerun the same command with --resume"


def _notice(name: str) -> None:
    sys.stderr.write(f"\n{name} received: stopping after the current step (send it again to stop at once)\n")
    sys.stderr.flush()


class CancelFlag:
    """Set by the first signal; callable with no arguments, so it is a `Callbacks.should_cancel` as is."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self.signal_name is not None

    def check(self, where: str) -> None:
        """Raise `RunInterrupted` naming `where` when a signal arrived (for phases without their own polling)."""
        if self.signal_name is not None:
            raise RunInterrupted(f"{self.signal_name} received during {where}")


@contextlib.contextmanager
def cancel_on_signals(
    signals: Sequence[int] = DEFAULT_SIGNALS, notice: Callable[[str], None] | None = _notice
) -> Iterator[CancelFlag]:
    """Install handlers that set a `CancelFlag` on the first signal and raise KeyboardInterrupt on the next.

    Args:
        signals: the signals to catch (SIGINT and SIGTERM by default).
        notice: called with the signal's name on the first signal (default: one line on stderr); None: silent.

    Outside the main thread (e.g. a ComfyUI worker) signal handlers cannot be installed: the flag is yielded
    but never set, and the host's own interruption mechanism applies. Signals the process ignores (SIG_IGN, as
    for a shell's background job) are left ignored.
    """
    flag = CancelFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if flag.signal_name is not None:
            raise KeyboardInterrupt(f"second signal ({name})")
        flag.signal_name = name
        if notice is not None:
            notice(name)

    # A signal the process already ignores (a background job's SIGINT, nohup's SIGHUP) stays ignored.
    previous = {sig: signal.getsignal(sig) for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        for sig in previous:
            signal.signal(sig, handler)
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
