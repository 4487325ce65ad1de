"""The weekly job: the whole asset graph for one origin week, or a subset such as history."""

from __future__ import annotations

import dagster as dg

from .partitions import weekly_partitions

__all__ = ["WEEKLY_FORECAST", "weekly_forecast_job"]

WEEKLY_FORECAST = "weekly_forecast"

weekly_forecast_job = dg.define_asset_job(
    WEEKLY_FORECAST,
    selection=dg.AssetSelection.groups("demand", "forecast", "accuracy"),
    partitions_def=weekly_partitions,
    description=(
        "Validate the week's sales, build the window's features, train and score, publish, and "
        "score the earlier forecasts of the week."
    ),
)
