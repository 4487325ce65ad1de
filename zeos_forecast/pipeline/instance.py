"""One instance of the forecasting graph: its settings, and the names and partitions built
from them.

Every definition of an instance (assets, checks, job, sensor, schedule, resources) takes its key or
name from here, so two instances (say `eu` and `us`, two lakes) sit side by side in one Dagster
project without a clash. The project's own code location is the instance without a prefix: its
names are the plain ones (`sales_history`, `weekly_forecast`, `lake`, ...).
"""

from __future__ import annotations

import datetime as dt
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import dagster as dg

from ..core.settings import ForecastSettings
from . import environment

__all__ = [
    "DEFAULT_FIRST_WEEK",
    "ForecastInstance",
    "InstanceSettings",
    "code_reference",
    "sibling_key",
]

# Earliest week a partition exists for, unless an instance says otherwise.
DEFAULT_FIRST_WEEK = dt.date.fromisoformat(environment.DEFAULT_FIRST_WEEK)
DEFAULT_SENSOR_INTERVAL_SECONDS = environment.DEFAULT_SENSOR_INTERVAL_SECONDS
DEFAULT_SCHEDULE_DAY = environment.DEFAULT_SCHEDULE_DAY  # Monday (0 = Sunday)
DEFAULT_SCHEDULE_HOUR = environment.DEFAULT_SCHEDULE_HOUR  # 06:00 UTC
# Drops of week W (Monday..Sunday) land on the following Monday: published by Tuesday noon.
DEFAULT_PUBLICATION_DEADLINE = "0 12 * * 2"


@dataclass(frozen=True)
class InstanceSettings:
    """What one deployment of the graph chooses, besides its resources.

    Attributes:
        forecast: The model, window and horizon settings (the run config's defaults).
        first_week: The first weekly partition (a Monday).
        key_prefix: Path prepended to every asset key, e.g. `("eu",)` -> `eu/sales_history`;
            its parts, joined by `_`, also prefix the job, sensor, schedule, check and resource
            names.
        group_name: One asset group for the whole graph; None: `demand`, `forecast`, `accuracy`.
        owners: Owners of every asset (`team:planning`, `someone@example.com`).
        tags: Tags of every asset.
        sensor_running: Whether `landing_sensor` starts running (default: stopped until turned on).
        sensor_interval_seconds: Seconds between the sensor's looks at the landing zone.
        schedule_running: Whether the fallback schedule starts running (default stopped).
        schedule_day_of_week: Day of the schedule's weekly run, 0 = Sunday .. 6 = Saturday.
        schedule_hour: Hour (UTC) of the schedule's weekly run.
        publish: Whether the graph holds `published_forecast` (off: forecasts are only written).
        publication_deadline_cron: By when each week a new forecast is published (cron, UTC):
            `published_forecast`'s freshness policy, which the UI shows as fresh or late; None:
            no policy.
    """

    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    first_week: dt.date = DEFAULT_FIRST_WEEK
    key_prefix: tuple[str, ...] = ()
    group_name: str | None = None
    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    sensor_running: bool = False
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS
    schedule_running: bool = False
    schedule_day_of_week: int = DEFAULT_SCHEDULE_DAY
    schedule_hour: int = DEFAULT_SCHEDULE_HOUR
    publish: bool = True
    publication_deadline_cron: str | None = DEFAULT_PUBLICATION_DEADLINE

    def __post_init__(self) -> None:
        problems = []
        if self.first_week.weekday() != 0:
            problems.append(f"first_week {self.first_week} is a {self.first_week:%A}, not a Monday")
        if not 1 <= self.sensor_interval_seconds <= 86_400:
            problems.append(
                f"sensor_interval_seconds must be 1..86400, got {self.sensor_interval_seconds}"
            )
        if not 0 <= self.schedule_day_of_week <= 6:
            problems.append(f"schedule_day_of_week must be 0..6, got {self.schedule_day_of_week}")
        if not 0 <= self.schedule_hour <= 23:
            problems.append(f"schedule_hour must be 0..23, got {self.schedule_hour}")
        if problems:
            raise ValueError("Invalid instance settings: " + "; ".join(problems))


@dataclass(frozen=True)
class ForecastInstance:
    """The keys, names and partitions of one instance, derived from its settings."""

    settings: InstanceSettings = field(default_factory=InstanceSettings)

    def key(self, asset: str) -> dg.AssetKey:
        """`sales_history` -> `eu/sales_history` for the instance prefixed `eu`."""
        return dg.AssetKey([*self.settings.key_prefix, asset])

    def name(self, base: str) -> str:
        """A job, sensor, schedule, check or resource name: `lake` -> `eu_lake`."""
        return "_".join([*self.settings.key_prefix, base])

    def group(self, default: str) -> str:
        return self.settings.group_name or default

    @cached_property
    def partitions(self) -> dg.WeeklyPartitionsDefinition:
        """Weekly partitions from `first_week`: key `W` is the Monday of the origin week."""
        return dg.WeeklyPartitionsDefinition(
            start_date=self.settings.first_week.isoformat(),
            day_offset=1,  # weeks start on Monday
            timezone="UTC",
            fmt="%Y-%m-%d",
        )

    def asset_attributes(
        self, default_group: str, compute: Callable, columns: dg.TableSchema | None = None
    ) -> dict[str, Any]:
        """What every asset of the instance carries: partitions, group, owners and tags, the
        description and code reference of the function that computes it, its table's columns."""
        metadata: dict[str, Any] = code_reference(compute)
        if columns is not None:
            metadata["dagster/column_schema"] = columns
        return {
            "partitions_def": self.partitions,
            "group_name": self.group(default_group),
            "owners": list(self.settings.owners) or None,
            "tags": dict(self.settings.tags) or None,
            "description": inspect.getdoc(compute),
            "metadata": metadata,
        }

    def resource(self, context, base: str):
        """The instance's resource `base` (`lake`, `landing`, `compute`) from a step's context."""
        return getattr(context.resources, self.name(base))


def sibling_key(key: dg.AssetKey, asset: str) -> dg.AssetKey:
    """The key of `asset` in the same instance as `key` (the same prefix)."""
    return dg.AssetKey([*key.path[:-1], asset])


def code_reference(compute: Callable) -> dict[str, dg.CodeReferencesMetadataValue]:
    """`dagster/code_references` metadata: the file and line of the function behind a definition."""
    _, first_line = inspect.getsourcelines(compute)
    with warnings.catch_warnings():
        # Code references are beta in Dagster 1.13; the UI's "open in editor" link is worth it.
        warnings.simplefilter("ignore", dg.BetaWarning)
        reference = dg.LocalFileCodeReference(
            file_path=inspect.getsourcefile(compute) or "", line_number=first_line
        )
        value = dg.CodeReferencesMetadataValue(code_references=[reference])
    return {"dagster/code_references": value}
