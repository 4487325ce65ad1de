"""Weekly partition keys and the run tags that name them: key `W` is the Monday of the last
observed week (the origin). The partitions themselves are an instance's (`instance.py`)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ..core.run_plan import week_ranges

__all__ = [
    "PARTITION_TAG",
    "RANGE_END_TAG",
    "RANGE_START_TAG",
    "partition_week",
    "week_ranges",
    "weeks_in_window",
]

# Run tags that name the partition (or range of partitions) a run materializes.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_week(key: str) -> dt.date:
    return dt.date.fromisoformat(key)


def weeks_in_window(window: dg.TimeWindow) -> list[dt.date]:
    """The Mondays of a partition time window (one for a single partition, more for a range)."""
    first, end = window.start.date(), window.end.date()
    return [first + dt.timedelta(weeks=i) for i in range((end - first).days // 7)]
