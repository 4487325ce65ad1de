"""The weekly job: the whole asset graph of an instance for one origin week, or a subset."""

from __future__ import annotations

import dagster as dg

from .instance import ForecastInstance

__all__ = ["WEEKLY_FORECAST", "weekly_forecast_job"]

WEEKLY_FORECAST = "weekly_forecast"


def weekly_forecast_job(
    instance: ForecastInstance, assets: list[dg.AssetKey]
) -> dg.UnresolvedAssetJobDefinition:
    """The instance's job over its own `assets` (never another instance's, whatever the groups)."""
    return dg.define_asset_job(
        instance.name(WEEKLY_FORECAST),
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=instance.partitions,
        description=(
            "Validate the week's sales, build the window's features, train and score, publish, "
            "and score the earlier forecasts of the week."
        ),
    )
