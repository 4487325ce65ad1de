"""The run planner: from the landing drops and what was validated, which runs to start.

One rule for "this drop is new", used by the sensor and by the CLI (`forecast`, `validate`,
`backfill`): a week is stale when its drop's content identity (`zeos_forecast.drops`) is not the
identity its validated `sales_history` partition records, whoever validated it (the sensor, the
CLI, the UI). Stale weeks are validated in one run per contiguous range; a single new week whose
history is otherwise up to date is validated and forecast in one run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..drops import IDENTITY_FOOTER_KEY
from ..storage import SALES_HISTORY, WEEK_KEY

if TYPE_CHECKING:
    from ..storage import Lake

__all__ = [
    "RunPlan",
    "plan_runs",
    "recorded_identities",
    "stale_weeks",
    "week_ranges",
    "weeks_to_forecast",
]

# Footers of sales_history partitions read at once (requests in flight on S3).
FOOTER_READERS = 8


@dataclass(frozen=True)
class RunPlan:
    """The runs that bring the forecasts up to date.

    Attributes:
        validate: Contiguous (first, last) ranges of stale weeks, one `sales_history` run each.
        forecast: Weeks forecast (features, forecast, checks, publication) once every run of
            `validate` has succeeded.
        at_once: A week validated and forecast in one run (its history otherwise up to date);
            then `validate` and `forecast` are empty.
    """

    validate: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    forecast: list[dt.date] = field(default_factory=list)
    at_once: dt.date | None = None

    @property
    def weeks_to_validate(self) -> int:
        ranges = self.validate or ([(self.at_once, self.at_once)] if self.at_once else [])
        return sum((last - first).days // 7 + 1 for first, last in ranges)


def stale_weeks(
    drops: Mapping[dt.date, str], validated: Mapping[dt.date, str | None]
) -> list[dt.date]:
    """The weeks whose drop (week -> content identity) is not the one validated, oldest first."""
    return sorted(week for week, identity in drops.items() if validated.get(week) != identity)


def plan_runs(
    drops: Mapping[dt.date, str],
    validated: Mapping[dt.date, str | None],
    forecast: Iterable[dt.date] = (),
    combine: bool = True,
) -> RunPlan:
    """The runs for `drops` (week -> content identity) given what was `validated`.

    Args:
        drops: The complete, readable drops to consider (a window, or the whole landing zone).
        validated: Week -> the drop identity its `sales_history` was validated from.
        forecast: Weeks to forecast once their history is validated.
        combine: Whether a single stale week that is also the single week to forecast may be
            validated and forecast in one run (not while other runs still validate weeks).
    """
    stale = stale_weeks(drops, validated)
    weeks = sorted(set(forecast))
    if combine and len(weeks) == 1 and stale == weeks:
        return RunPlan(at_once=weeks[0])
    return RunPlan(validate=week_ranges(stale), forecast=weeks)


def weeks_to_forecast(
    stale: Iterable[dt.date], validated_before: Mapping[dt.date, str | None], latest: dt.date | None
) -> list[dt.date]:
    """What the sensor forecasts on its own: the latest week when its drop is new, and weeks
    validated before whose drop changed (corrections). Older weeks of a backlog are forecast
    only when someone backfills them."""
    return sorted(w for w in stale if w == latest or validated_before.get(w) is not None)


def recorded_identities(
    lake: Lake, weeks: Iterable[dt.date], recorded: Iterable[str] | None = None
) -> dict[dt.date, str | None]:
    """The drop identity each week's `sales_history` partition records (None: no partition, or
    none recorded).

    Args:
        lake: The lake.
        weeks: The weeks to look up.
        recorded: Partition keys the Dagster instance has a materialization of (None: the lake
            alone decides). A partition the instance does not know (say a range run failed on a
            later week after writing this one) counts as not validated: the instance, not the
            lake, is what the UI shows.
    """
    weeks = list(weeks)
    present = set(lake.partitions(SALES_HISTORY, WEEK_KEY))
    known = set(recorded) if recorded is not None else None
    wanted = [w for w in weeks if w in present and (known is None or w.isoformat() in known)]

    def identity(week: dt.date) -> str | None:
        return lake.partition_footer(SALES_HISTORY, WEEK_KEY, week).get(IDENTITY_FOOTER_KEY)

    # One footer each: on S3 a couple of requests, so several at once.
    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        found = dict(zip(wanted, pool.map(identity, wanted), strict=True))
    return {w: found.get(w) for w in weeks}


def week_ranges(weeks: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Weeks grouped into contiguous (first, last) ranges, oldest first: one run per range."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for week in sorted(weeks):
        if ranges and week - ranges[-1][1] == dt.timedelta(weeks=1):
            ranges[-1] = (ranges[-1][0], week)
        else:
            ranges.append((week, week))
    return ranges
