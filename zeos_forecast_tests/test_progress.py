"""Progress lines of long steps: done/total, rate and ETA, at a bounded frequency."""

import threading
import time

from zeos_forecast.core.progress import Progress


def test_the_last_unit_always_reports_done_total_rate_and_eta():
    lines: list[str] = []
    progress = Progress("fitting", 3, "trees", lines.append, every_seconds=3600)

    for _ in range(3):
        progress.advance()

    assert len(lines) == 1
    assert lines[0].startswith("fitting: 3/3 trees (100%, ")
    assert lines[0].endswith("ETA 0 s)")


def test_reports_are_spaced_by_the_interval_however_many_units_are_done():
    lines: list[str] = []
    progress = Progress("reading", 10_000, "rows", lines.append, every_seconds=3600)

    for _ in range(9_999):
        progress.advance()

    assert lines == []


def test_a_slow_step_reports_its_rate_per_minute_instead_of_zero_per_second():
    lines: list[str] = []
    progress = Progress("backtest origins", 4, "origins", lines.append, every_seconds=0)
    progress.started -= 120  # two minutes for the first origin

    progress.advance()

    assert "origins/min" in lines[0] and "0 origins/s" not in lines[0]
    assert "ETA 36" in lines[0]  # three more origins at two minutes each


def test_no_report_callable_means_silence():
    progress = Progress("quiet", 2, "rows", None, every_seconds=0)
    progress.advance(2)
    assert progress.done == 2 and time.perf_counter() >= progress.started


def test_units_done_on_several_threads_at_once_are_all_counted_and_reported_once_done():
    reports = []
    progress = Progress("fitting", 4 * 20_000, "trees", reports.append, every_seconds=3600)

    def work():
        for _ in range(20_000):
            progress.advance()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert progress.done == 80_000
    assert reports[-1].startswith("fitting: 80,000/80,000 trees (100%")
