"""`demand_forecast`: train LightGBM on the window and score every active SKU, in one step."""

import time

import dagster as dg
import pyarrow as pa

from ..core.model import train_and_score
from .config import ForecastConfig
from .demand_features import DEMAND_FEATURES, ORIGIN_KEY, demand_features
from .metadata import peak_memory_mb, preview, timings
from .partitions import partition_week, weekly_partitions
from .resources import LakeResource

__all__ = ["DEMAND_FORECAST", "demand_forecast"]

DEMAND_FORECAST = "demand_forecast"


@dg.asset(
    partitions_def=weekly_partitions,
    deps=[demand_features],
    group_name="forecast",
    kinds={"lightgbm", "parquet"},
)
def demand_forecast(
    context: dg.AssetExecutionContext, config: ForecastConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Probabilistic demand forecast for weeks W+1..W+H of every active SKU, from origin week W.

    Fits a global LightGBM point model and one quantile model per level through mlforecast on the
    features of W, and scores all active SKUs in the same step: no model server, no checkpoint,
    no artifact hand-off. Writes `demand_forecast/forecast_week=W/part-0.parquet` with
    `article_id, merchant_id, week, horizon, forecast, q10, q50, q90, run_id`.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    settings = config.settings()
    started = time.perf_counter()
    features = store.read_partition(DEMAND_FEATURES, ORIGIN_KEY, origin)
    read_seconds = time.perf_counter() - started
    context.log.info(f"Training on {len(features):,} rows of {features['sku'].nunique():,} SKUs.")
    result = train_and_score(features, origin, settings, report=context.log.info)
    del features
    table = result.table.assign(run_id=context.run_id)
    started = time.perf_counter()
    path = store.write_partition(
        DEMAND_FORECAST, ORIGIN_KEY, origin, pa.Table.from_pandas(table, preserve_index=False)
    )
    seconds = {"read": read_seconds, **result.seconds, "write": time.perf_counter() - started}
    return dg.MaterializeResult(
        metadata={
            "rows": len(table),
            "skus_scored": result.skus_scored,
            "skus_trained": result.skus_trained,
            "train_rows": result.train_rows,
            "horizon": settings.horizon,
            "quantiles": ", ".join(settings.quantile_columns),
            "mean_weekly_forecast": round(float(table["forecast"].sum() / settings.horizon), 1),
            **timings(seconds),
            "peak_memory_mb": peak_memory_mb(),
            "lgbm_params": dg.MetadataValue.json(result.lgbm_params),
            "top_features": dg.MetadataValue.md(
                result.feature_importance.rename("gain share")
                .to_frame()
                .to_markdown(floatfmt=".3f")
            ),
            "path": dg.MetadataValue.path(store.uri_of_path(path)),
            "preview": preview(table.drop(columns="run_id")),
        }
    )
