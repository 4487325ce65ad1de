"""Progress of long steps (rows or trees done, rate, ETA), reported through a plain callable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Progress", "Report"]

Report = Callable[[str], None]
# Report at most this often, so a run log stays readable on any data size.
REPORT_EVERY_SECONDS = 5.0


class Progress:
    """Counts work done on a step and reports `done/total, rate, ETA` at a bounded frequency.

    Args:
        step: What is being done, e.g. "validating weekly drops".
        total: Units of work in the step.
        unit: Name of a unit of work, e.g. "rows" or "trees".
        report: Where messages go (the Dagster run log, a logger, `print`).
    """

    def __init__(
        self,
        step: str,
        total: int,
        unit: str,
        report: Report | None,
        every_seconds: float = REPORT_EVERY_SECONDS,
    ):
        self.step, self.total, self.unit = step, max(int(total), 1), unit
        self.report = report
        self.every_seconds = every_seconds
        self.done = 0
        self.started = self._last = time.perf_counter()
        # Models fitted at once advance one count from several threads.
        self._lock = threading.Lock()

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.done += int(amount)
            now = time.perf_counter()
            if self.done >= self.total or now - self._last >= self.every_seconds:
                self._last = now
                self._emit(now)

    def _emit(self, now: float) -> None:
        if self.report is None:
            return
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        # Slow steps (a backtest origin takes seconds) read better per minute than as "0/s".
        speed = f"{rate:,.0f} {self.unit}/s" if rate >= 1 else f"{rate * 60:,.1f} {self.unit}/min"
        self.report(
            f"{self.step}: {self.done:,}/{self.total:,} {self.unit} "
            f"({self.done / self.total:.0%}, {speed}, ETA {remaining:,.0f} s)"
        )
