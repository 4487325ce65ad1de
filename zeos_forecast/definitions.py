"""The code location: composes assets, checks, jobs, sensors, schedules and resources."""

import dagster as dg

from .pipeline.checks import demand_forecast_checks, sales_history_checks
from .pipeline.demand_features import demand_features
from .pipeline.demand_forecast import demand_forecast
from .pipeline.deployment import resources_for_deployment
from .pipeline.forecast_accuracy import forecast_accuracy
from .pipeline.jobs import weekly_forecast_job
from .pipeline.published_forecast import published_forecast
from .pipeline.sales_history import sales_history
from .pipeline.schedules import weekly_forecast_schedule
from .pipeline.sensors import landing_sensor

# Every run executes its steps one after another in the run's own process, whoever starts it
# (the UI, the sensor, a backfill, the CLI): the steps form a chain, each step's parallelism is
# its own (threads, Dask), and a process per step would re-import the code location (about 8 s
# on 2 cores) for every step of every run.
defs = dg.Definitions(
    assets=[sales_history, demand_features, demand_forecast, published_forecast, forecast_accuracy],
    asset_checks=[sales_history_checks, demand_forecast_checks],
    jobs=[weekly_forecast_job],
    sensors=[landing_sensor],
    schedules=[weekly_forecast_schedule],
    resources=resources_for_deployment(),
    executor=dg.in_process_executor,
)
