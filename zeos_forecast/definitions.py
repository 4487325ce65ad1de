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

defs = dg.Definitions(
    assets=[sales_history, demand_features, demand_forecast, published_forecast, forecast_accuracy],
    asset_checks=[sales_history_checks, demand_forecast_checks],
    jobs=[weekly_forecast_job],
    sensors=[landing_sensor],
    schedules=[weekly_forecast_schedule],
    resources=resources_for_deployment(),
)
