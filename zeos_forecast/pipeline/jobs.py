"""The weekly job: the whole asset graph of an instance for one origin week, or a subset."""

from __future__ import annotations

import warnings

import dagster as dg

from .instance import ForecastInstance

__all__ = ["WEEKLY_FORECAST", "weekly_forecast_job"]

WEEKLY_FORECAST = "weekly_forecast"

# sales_history validates a range of weeks in one run (a single-run backfill policy), the other
# assets one week per run; Dagster then gives the job the one-week policy and warns on every
# load. That is the policy we want for the job (a forecast per week), so the warning says nothing.
warnings.filterwarnings(
    "ignore", message=r"Asset job .*weekly_forecast materializes assets with varying BackfillPol"
)


def weekly_forecast_job(
    instance: ForecastInstance, assets: list[dg.AssetKey]
) -> dg.UnresolvedAssetJobDefinition:
    """The instance's job over its own `assets` (never another instance's, whatever the groups)."""
    return dg.define_asset_job(
        instance.name(WEEKLY_FORECAST),
        selection=dg.AssetSelection.assets(*assets),  # its partitions are the assets' own
        description=(
            "Validate the week's sales, build the window's features, train and score, publish, "
            "and score the earlier forecasts of the week."
        ),
    )
