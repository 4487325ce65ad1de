"""The lake as a Dagster resource: assets and sensors get a `Lake`, tests swap the root."""

from __future__ import annotations

import dagster as dg

from ..storage import Lake

__all__ = ["LakeResource"]


class LakeResource(dg.ConfigurableResource):
    """Where derived datasets live and landing drops arrive: a local path or `s3://bucket/prefix`."""

    root: str

    def open(self) -> Lake:
        return Lake(self.root)
