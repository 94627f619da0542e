"""What the subcommands share: argument types that check every number where it is parsed, a parser whose errors
are one line, and how a command ends (its exit status and its last line).

argparse names a failing type by its function name ("invalid _positive_int value"); these types say what they
want instead, and `OneLineParser` prints a single `error:` line (no usage block) before exiting with status 2.
`finish` turns the library's errors into one line each: bad input and failed writes exit 2, interrupts 130.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .presets import SEED_MAX

#: The last words of a line about an interrupted or failed run whose finished work is kept.
RESUME = "rerun the same command with --resume"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: 'error: <what> (see <prog> --help)', exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def seed(text: str) -> int:
    """A seed the generators accept: a whole number in [0, 2^64 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {SEED_MAX}, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {SEED_MAX} (the generator's range)")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def finish(work: Callable[[Any], Any], resume_hint: str | None) -> tuple[int, Any]:
    """Run `work(should_cancel)` under Ctrl+C / SIGTERM handling; returns (exit status, its result or None).

    A mistake in the input (ValueError, FileNotFoundError) or a failed write (a full disk, a permission) is one
    `error:` line, status 2; non-finite training is one line, status 1; an interrupt prints how to continue, status
    130. `resume_hint` (e.g. "rerun the same command with --resume") ends the lines where finished work is kept;
    None for a command that cannot resume.
    """
    from safetensors import SafetensorError

    from .checkpoint import write_failure
    from .console import end_line
    from .interrupts import RunInterrupted, cancel_on_signals
    from .interrupts import resume_hint as stage_hint
    from .training.runner import NonFiniteLossError, TrainingCancelled

    again = f"; {resume_hint}" if resume_hint else ""
    try:
        with cancel_on_signals() as cancel:
            return 0, work(cancel)
    except (ValueError, FileNotFoundError) as error:
        end_line()
        print(f"error: {error}", file=sys.stderr)
        return 2, None
    except (OSError, SafetensorError) as error:  # a full disk, no rights: from our writer or a library's
        line = write_failure(error)
        if line is None:
            raise
        end_line()
        print(f"error: {line}; make room (or choose another --out){again}", file=sys.stderr)
        return 2, None
    except NonFiniteLossError as error:
        end_line()
        print(f"error: {error}{again}", file=sys.stderr)
        return 1, None
    except TrainingCancelled as cancelled:
        end_line()
        line = stage_hint(cancelled.stage, cancelled.step) if resume_hint else f"interrupted at step {cancelled.step}"
        print(line, file=sys.stderr)
        return 130, None
    except RunInterrupted as interrupted:
        end_line()
        print(f"{interrupted}: {resume_hint or 'nothing is kept'}", file=sys.stderr)
        return 130, None


__all__ = ["RESUME", "SEED_MAX", "OneLineParser", "finish", "non_negative_float", "positive_int", "seed"]
