"""Ctrl-C and SIGTERM during training: finish the step, save, stop; a second Ctrl-C stops at once."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupt_flag() -> Iterator[dict[str, bool]]:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM (a scheduler's or torchrun's polite kill) only sets
    ``flag["set"]``: the loop finishes its step, saves and stops. A second Ctrl-C raises at once.

    Outside the main thread signal handlers cannot be installed; Ctrl-C then stays an immediate KeyboardInterrupt.
    """
    flag = {"set": False}
    signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: Any) -> None:
        if not flag["set"]:  # an evaluation can take a while: say why nothing stops yet (os.write: signal-safe)
            os.write(2, b"\nstopping: finishing the current step (and its evaluation), then saving; press Ctrl-C "
                        b"again to stop at once\n")
        flag["set"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        for sig in signals:
            old = signal.getsignal(sig)
            signal.signal(sig, handle)
            previous[sig] = old
    except ValueError:  # not the main thread
        pass
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
