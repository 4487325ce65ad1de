"""`weekly_forecast_schedule`: a fallback to the sensor, off by default.

It runs the weekly job for the latest complete week at a fixed time: Monday (`ZEOS_SCHEDULE_DAY`,
0 = Sunday .. 6 = Saturday) at 06:00 UTC (`ZEOS_SCHEDULE_HOUR`). Turn it on in the UI where drops
arrive on a fixed timetable and the history of earlier weeks is already validated.
"""

import dagster as dg

from .environment import schedule_time
from .jobs import weekly_forecast_job

__all__ = ["weekly_forecast_schedule"]

DAY_OF_WEEK, HOUR = schedule_time()

weekly_forecast_schedule = dg.build_schedule_from_partitioned_job(
    weekly_forecast_job,
    name="weekly_forecast_schedule",
    description="Forecast the latest complete week at a fixed time (fallback to landing_sensor).",
    day_of_week=DAY_OF_WEEK,
    hour_of_day=HOUR,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
