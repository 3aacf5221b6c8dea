"""A background thread that calls a function at a fixed rate (samplers, pollers, keep-alives)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Up to this interval the thread waits with a plain sleep (one syscall, the cheapest wake-up; stop
#: then takes up to one interval); longer intervals wait on an event that stop interrupts at once.
SLEEP_UP_TO_S = 0.25


class PeriodicThread:
    """Calls ``fn`` every ``interval_s`` on a daemon thread until :meth:`stop`.

    Ticks are on a fixed schedule (no drift); ticks missed while ``fn`` was slow are skipped.  If
    ``fn`` raises, the thread stops and keeps the exception in :attr:`error`.
    """

    def __init__(self, fn: Callable[[], None], interval_s: float, name: str):
        self.fn = fn
        self.interval_s = interval_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PeriodicThread:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += self.interval_s
            delay = next_tick - time.monotonic()
            if delay < 0:  # fn overran: skip the missed ticks
                next_tick -= delay
                delay = 0.0
            if self.interval_s <= SLEEP_UP_TO_S:
                time.sleep(delay)
                if self._stop.is_set():
                    return
            elif self._stop.wait(delay):
                return
            try:
                self.fn()
            except Exception as exc:
                self.error = exc
                return
