"""`weekly_forecast_schedule`: a fallback to the sensor, off by default.

It runs the weekly job for the latest complete week at a fixed time: Monday (`ZEOS_SCHEDULE_DAY`,
0 = Sunday .. 6 = Saturday) at 06:00 UTC (`ZEOS_SCHEDULE_HOUR`). Turn it on in the UI where drops
arrive on a fixed timetable and the history of earlier weeks is already validated.
"""

import os

import dagster as dg

from .jobs import weekly_forecast_job

__all__ = ["weekly_forecast_schedule"]

DEFAULT_DAY_OF_WEEK = 1  # Monday, right after the week ends
DEFAULT_HOUR = 6

weekly_forecast_schedule = dg.build_schedule_from_partitioned_job(
    weekly_forecast_job,
    name="weekly_forecast_schedule",
    description="Forecast the latest complete week at a fixed time (fallback to landing_sensor).",
    day_of_week=int(os.environ.get("ZEOS_SCHEDULE_DAY", DEFAULT_DAY_OF_WEEK)),
    hour_of_day=int(os.environ.get("ZEOS_SCHEDULE_HOUR", DEFAULT_HOUR)),
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
