"""The landing zone as the sensor sees it: the weekly drops, their content identity, and the
identity each validated week records.

One `ConfigurableResource` interface with a local and an S3 implementation, so the sensor is tested
against either without patching. Both list drops through the lake (`Lake.sales_drops`), so the
sensor, the CLI's run planner and the runs share one rule for a drop's identity (its content, see
`zeos_forecast.drops`) and for when it may be read.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod

import dagster as dg
from dagster_aws.s3 import S3Resource

from ..core.run_plan import recorded_identities
from ..drops import Drop
from ..storage import Lake
from .resources import LakeResource

__all__ = ["Drop", "LandingZone", "LocalLandingZone", "S3LandingZone"]


class LandingZone(dg.ConfigurableResource, ABC):
    """Lists the weekly sales drops under a lake root."""

    @abstractmethod
    def lake(self) -> Lake:
        """The lake the landing zone belongs to."""

    def complete_drops(self) -> dict[dt.date, Drop]:
        """Every week whose drop has its `_SUCCESS` marker, oldest first; a drop that cannot be
        read now (still arriving, a link out of the landing zone, ...) says why in `problem`."""
        return self.lake().sales_drops()

    def recorded_identities(
        self, weeks: list[dt.date], recorded: set[str]
    ) -> dict[dt.date, str | None]:
        """The drop identity each week's validated `sales_history` records (`recorded`: the
        partitions the Dagster instance has materialized)."""
        return recorded_identities(self.lake(), weeks, recorded)


class LocalLandingZone(LandingZone):
    """A landing zone in a local directory tree (`<root>/landing/sales/week=YYYY-MM-DD/`)."""

    root: str

    def lake(self) -> Lake:
        return Lake(self.root)


class S3LandingZone(LandingZone):
    """A landing zone under `s3://bucket/prefix`, listed page by page (1,000 keys a page)."""

    root: str
    s3: S3Resource

    def lake(self) -> Lake:
        return LakeResource(root=self.root, s3=self.s3).open()
