"""The landing zone as the sensor sees it: the weekly drops and their content identity.

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

from ..drops import Drop
from ..storage import Lake
from .resources import LakeResource

__all__ = ["Drop", "LandingZone", "LocalLandingZone", "S3LandingZone"]


class LandingZone(dg.ConfigurableResource, ABC):
    """Lists the weekly sales drops under a lake root."""

    @abstractmethod
    def complete_drops(self) -> dict[dt.date, Drop]:
        """Every week whose drop has its `_SUCCESS` marker, oldest first; a drop that cannot be
        read now (still arriving, a link out of the landing zone, ...) says why in `problem`."""


class LocalLandingZone(LandingZone):
    """A landing zone in a local directory tree (`<root>/landing/sales/week=YYYY-MM-DD/`)."""

    root: str

    def complete_drops(self) -> dict[dt.date, Drop]:
        return Lake(self.root).sales_drops()


class S3LandingZone(LandingZone):
    """A landing zone under `s3://bucket/prefix`, listed page by page (1,000 keys a page)."""

    root: str
    s3: S3Resource

    def complete_drops(self) -> dict[dt.date, Drop]:
        return LakeResource(root=self.root, s3=self.s3).open().sales_drops()
