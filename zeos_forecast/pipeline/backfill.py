"""Backfills: `forecast_week` for every week of a range, one run per week, oldest first.

The same runs as the sensor's and the UI's: each week's features, forecast, checks, publication
and accuracy, after any drop of its window that is new or dropped again was validated. Weeks
that exist are replaced (every partition is written atomically), so a backfill can be re-run.

Every run of one backfill carries the tag `zeos/backfill=<id>`: in the UI, the runs list
filtered by that tag is the backfill, partition by partition. It is not a Dagster backfill record
(Overview > Backfills), which Dagster's public API only creates for runs its daemon launches: the
GraphQL mutation `launchPartitionBackfill` needs a running webserver and daemon, and the runs then
start in the daemon's processes, not here; `RunRequest.for_asset_graph_subset`, `PartitionBackfill`
and `DagsterInstance.add_backfill` are private. The CLI runs the weeks itself, in this process and
without `dagster dev`, so it groups them by the tag (the closest public behaviour).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ..core.progress import Progress, Report
from .deployment import open_lake
from .launch import RunFailed, WeekRun, forecast_week

__all__ = ["BACKFILL_TAG", "BackfilledWeek", "backfill_weeks", "new_backfill_id", "run_backfill"]

# The run tag that groups the runs of one CLI backfill (the UI filters the runs list by it).
BACKFILL_TAG = "zeos/backfill"


@dataclass
class BackfilledWeek:
    """One week of a backfill: what ran, and when (seconds since the epoch)."""

    run: WeekRun
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def new_backfill_id(first: dt.date, last: dt.date) -> str:
    """An id that names the range and is unique: `2026-10-26..2026-11-09-3f9a1c`."""
    return f"{first}..{last}-{secrets.token_hex(3)}"


def backfill_weeks(first: dt.date, last: dt.date) -> list[dt.date]:
    """The Mondays `first .. last`.

    Raises:
        ValueError: when a bound is not a Monday or the range ends before it starts.
    """
    if first.weekday() or last.weekday():
        raise ValueError(f"A backfill runs from a Monday to a Monday, got {first} .. {last}.")
    if last < first:
        raise ValueError(f"The backfill ends ({last}) before it starts ({first}).")
    return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def run_backfill(
    lake_root: str,
    first: dt.date,
    last: dt.date,
    instance: dg.DagsterInstance,
    forecast_config: dict[str, Any] | None = None,
    window_config: dict[str, Any] | None = None,
    compute_config: dict[str, Any] | None = None,
    report: Report | None = print,
    backfill_id: str | None = None,
) -> list[BackfilledWeek]:
    """Forecasts (and publishes) every week from `first` to `last`, one Dagster run per week,
    every run tagged `zeos/backfill=<backfill_id>` (default: a new id).

    Raises:
        ValueError: for a range that is not Mondays in order.
        RunFailed: before any run when a week of the range has no complete drop; else with the
            failing week's error, saying which weeks are done and where to start again.
    """
    weeks = backfill_weeks(first, last)
    lake = open_lake(lake_root)
    drops = lake.sales_drop_weeks()
    missing = [w for w in weeks if w not in drops]
    if missing:
        raise RunFailed(
            f"No complete sales drop under {lake.uri} for {len(missing)} of the {len(weeks)} "
            f"weeks to backfill ({', '.join(map(str, missing[:5]))}"
            f"{', ...' if len(missing) > 5 else ''}): a drop is landing/sales/week=YYYY-MM-DD/ "
            "with its files and a _SUCCESS marker."
        )
    tags = {BACKFILL_TAG: backfill_id or new_backfill_id(first, last)}
    progress = Progress("backfill", len(weeks), "weeks", report, every_seconds=0)
    done: list[BackfilledWeek] = []
    for week in weeks:
        started = time.time()
        try:
            run = forecast_week(
                week,
                lake_root,
                instance,
                forecast_config,
                window_config,
                report=report,
                compute_config=compute_config,
                tags=tags,
            )
        except RunFailed as error:
            raise RunFailed(
                f"Week {week} failed after {len(done)} of {len(weeks)} weeks were backfilled; "
                f"once fixed, continue with --from {week}.\n{error}"
            ) from error
        done.append(BackfilledWeek(run, started, time.time()))
        progress.advance()
    return done
