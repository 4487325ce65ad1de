"""`weekly_forecast_schedule`: a fallback to the sensor, off unless an instance turns it on.

It runs the weekly job for the latest complete week at a fixed time (by default Monday 06:00
UTC). Turn it on where drops arrive on a fixed timetable and the history of earlier weeks is
already validated.
"""

from __future__ import annotations

import dagster as dg

from .instance import ForecastInstance

__all__ = ["WEEKLY_FORECAST_SCHEDULE", "weekly_forecast_schedule"]

WEEKLY_FORECAST_SCHEDULE = "weekly_forecast_schedule"


def weekly_forecast_schedule(
    instance: ForecastInstance, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    settings = instance.settings
    return dg.build_schedule_from_partitioned_job(
        job,
        name=instance.name(WEEKLY_FORECAST_SCHEDULE),
        description="Forecast the latest complete week at a fixed time (fallback to the sensor).",
        day_of_week=settings.schedule_day_of_week,
        hour_of_day=settings.schedule_hour,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.schedule_running
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
