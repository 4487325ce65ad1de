"""The whole set of definitions of one instance, built from its settings and its three resources."""

from __future__ import annotations

import dagster as dg

from .checks import demand_forecast_checks_for, sales_history_checks_for
from .demand_features import demand_features_asset
from .demand_forecast import demand_forecast_asset
from .forecast_accuracy import forecast_accuracy_asset
from .instance import ForecastInstance, InstanceSettings
from .jobs import weekly_forecast_job
from .landing_zone import LandingZone
from .published_forecast import published_forecast_asset
from .resources import ComputeResource, LakeResource
from .sales_history import sales_history_asset
from .schedules import weekly_forecast_schedule
from .sensors import landing_sensor

__all__ = ["forecast_definitions"]


def forecast_definitions(
    settings: InstanceSettings,
    lake: LakeResource,
    landing: LandingZone,
    compute: ComputeResource | None = None,
) -> dg.Definitions:
    """Assets, checks, the weekly job, the landing sensor, the schedule and the resources of one
    instance. Every key and name carries the instance's prefix, so instances merge cleanly."""
    instance = ForecastInstance(settings)
    assets = [
        sales_history_asset(instance),
        demand_features_asset(instance),
        demand_forecast_asset(instance),
        *([published_forecast_asset(instance)] if settings.publish else []),
        forecast_accuracy_asset(instance),
    ]
    job = weekly_forecast_job(instance, [key for asset in assets for key in asset.keys])
    # Every run executes its steps one after another in the run's own process, whoever starts
    # it (the UI, the sensor, a backfill, the CLI): the steps form a chain, each step's
    # parallelism is its own (threads, Dask), and a process per step would re-import the code
    # location (about 8 s on 2 cores) for every step of every run.
    return dg.Definitions(
        assets=assets,
        asset_checks=[sales_history_checks_for(instance), demand_forecast_checks_for(instance)],
        jobs=[job],
        sensors=[landing_sensor(instance, job)],
        schedules=[weekly_forecast_schedule(instance, job)],
        resources={
            instance.name("lake"): lake,
            instance.name("landing"): landing,
            instance.name("compute"): compute or ComputeResource(),
        },
        executor=dg.in_process_executor,
    )
