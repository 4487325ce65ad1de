"""The weekly graph of the instance without a prefix (the project's own names), for tests that
materialize its assets or tick its sensor with resources of their own."""

from zeos_forecast.pipeline.checks import demand_forecast_checks_for, sales_history_checks_for
from zeos_forecast.pipeline.demand_features import demand_features_asset
from zeos_forecast.pipeline.demand_forecast import demand_forecast_asset
from zeos_forecast.pipeline.forecast_accuracy import forecast_accuracy_asset
from zeos_forecast.pipeline.instance import ForecastInstance
from zeos_forecast.pipeline.jobs import weekly_forecast_job
from zeos_forecast.pipeline.published_forecast import published_forecast_asset
from zeos_forecast.pipeline.sales_history import sales_history_asset
from zeos_forecast.pipeline.sensors import landing_sensor as landing_sensor_for

INSTANCE = ForecastInstance()

sales_history = sales_history_asset(INSTANCE)
demand_features = demand_features_asset(INSTANCE)
demand_forecast = demand_forecast_asset(INSTANCE)
published_forecast = published_forecast_asset(INSTANCE)
forecast_accuracy = forecast_accuracy_asset(INSTANCE)
sales_history_checks = sales_history_checks_for(INSTANCE)
demand_forecast_checks = demand_forecast_checks_for(INSTANCE)
ASSETS = [sales_history, demand_features, demand_forecast, published_forecast, forecast_accuracy]
weekly_forecast_job = weekly_forecast_job(INSTANCE, [asset.key for asset in ASSETS])
landing_sensor = landing_sensor_for(INSTANCE, weekly_forecast_job)
