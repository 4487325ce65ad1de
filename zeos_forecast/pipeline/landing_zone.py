"""The landing zone as the sensor sees it: complete weekly drops and their content identity.

One `ConfigurableResource` interface with a local and an S3 implementation, so the sensor is tested
against either without patching. A drop counts once its `_SUCCESS` marker is there; its identity is
a digest of its data files' names, sizes and ETags (S3) or modification times (local), so the same
drop is recognised on every tick and a corrected re-drop is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass

import dagster as dg
from dagster_aws.s3 import S3Resource

from ..storage import LANDING_SALES, SUCCESS_MARKER, parse_partition_dir

__all__ = ["Drop", "LandingZone", "LocalLandingZone", "S3LandingZone"]


@dataclass(frozen=True)
class Drop:
    """A complete weekly drop: its week, content identity and number of data files."""

    week: dt.date
    identity: str
    files: int


class LandingZone(dg.ConfigurableResource, ABC):
    """Lists the complete weekly sales drops under a lake root."""

    @abstractmethod
    def complete_drops(self) -> dict[dt.date, Drop]:
        """Every week whose drop has its `_SUCCESS` marker, oldest first."""


class LocalLandingZone(LandingZone):
    """A landing zone in a local directory tree (`<root>/landing/sales/week=YYYY-MM-DD/`)."""

    root: str

    def complete_drops(self) -> dict[dt.date, Drop]:
        base = os.path.join(self.root, LANDING_SALES)
        if not os.path.isdir(base):
            return {}
        listing: dict[str, list[tuple[str, int, str]]] = {}
        for folder in os.scandir(base):
            if folder.is_dir():
                listing[folder.name] = [
                    (entry.name, entry.stat().st_size, str(entry.stat().st_mtime_ns))
                    for entry in os.scandir(folder.path)
                    if entry.is_file()
                ]
        return _drops(listing)


class S3LandingZone(LandingZone):
    """A landing zone under `s3://bucket/prefix`, listed page by page (1,000 keys a page)."""

    root: str
    s3: S3Resource

    def complete_drops(self) -> dict[dt.date, Drop]:
        bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
        base = posixpath.join(prefix, LANDING_SALES) + "/" if prefix else LANDING_SALES + "/"
        listing: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        pages = (
            self.s3.get_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=base)
        )
        for page in pages:
            for item in page.get("Contents", []):
                folder, _, name = item["Key"][len(base) :].partition("/")
                if name and "/" not in name:
                    listing[folder].append((name, int(item["Size"]), item["ETag"].strip('"')))
        return _drops(listing)


def _drops(listing: dict[str, list[tuple[str, int, str]]]) -> dict[dt.date, Drop]:
    """Complete drops from `{folder name: [(file name, size, version tag)]}`."""
    drops = {}
    for folder, files in listing.items():
        week = parse_partition_dir(folder, "week")
        names = {name for name, _, _ in files}
        if week is None or SUCCESS_MARKER not in names:
            continue
        data = sorted(f for f in files if not f[0].startswith((".", "_")))
        digest = hashlib.sha256(repr(data).encode()).hexdigest()[:16]
        drops[week] = Drop(week=week, identity=digest, files=len(data))
    return dict(sorted(drops.items()))
