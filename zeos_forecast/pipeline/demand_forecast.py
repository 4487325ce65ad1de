"""`demand_forecast`: train LightGBM on the window and score every active SKU, in one step."""

import dagster as dg

from ..core.contract import LandingDataError
from ..core.services import forecast
from ..storage import DEMAND_FORECAST, ORIGIN_KEY
from .config import ForecastConfig, forecast_config
from .conventions import forecast_schema, with_row_count_and_uri
from .demand_features import DEMAND_FEATURES
from .instance import ForecastInstance
from .metadata import peak_memory_mb, table_preview, timings
from .partitions import partition_week
from .pictures import fan_chart_picture
from .resources import ComputeResource, LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY

__all__ = ["DEMAND_FORECAST", "demand_forecast", "demand_forecast_asset"]


def demand_forecast_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`demand_forecast` of an instance: its settings are the run config's defaults."""
    config_type = forecast_config(instance.settings.forecast)
    columns = forecast_schema(instance.settings.forecast.quantile_columns)

    @dg.asset(
        key=instance.key(DEMAND_FORECAST),
        deps=[instance.key(DEMAND_FEATURES)],
        required_resource_keys={instance.name("lake"), instance.name("compute")},
        retry_policy=STEP_RETRY_POLICY,
        kinds={"lightgbm", "parquet"},
        **instance.asset_attributes("forecast", demand_forecast, columns),
    )
    def _asset(context: dg.AssetExecutionContext, config: config_type) -> dg.MaterializeResult:
        lake, compute = instance.resource(context, "lake"), instance.resource(context, "compute")
        return with_row_count_and_uri(demand_forecast(context, config, lake, compute))

    return _asset


def demand_forecast(
    context: dg.AssetExecutionContext,
    config: ForecastConfig,
    lake: LakeResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """Probabilistic demand forecast for weeks W+1..W+H of every active SKU, from origin week W.

    Fits a global LightGBM point model and one quantile model per level through mlforecast on the
    features of W, and scores all active SKUs in the same step: no model server, no checkpoint,
    no artifact hand-off. Over the horizon, prices and promotion columns come from the plans in
    `landing/plans/week=.../` where they exist, else the SKU's usual (median recent) value
    (the metadata says which). A window larger than the memory budget is trained on a uniform
    sample of `train_rows` rows and scored in SKU shards, streamed into the file (engine
    `sharded`, or `dask` on a cluster's workers). Writes
    `demand_forecast/forecast_week=W/part-0.parquet` with
    `article_id, merchant_id, week, horizon, forecast, q10, q50, q90, run_id`, and beside it
    `_fan_chart.png`: history and forecast of the top SKUs by forecast volume and a few random
    ones, also shown in the metadata.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    settings = config.settings()
    try:
        written = forecast(
            store, origin, settings, context.run_id, compute.settings(), context.log.info
        )
    except LandingDataError as error:
        raise landing_failure(error) from error
    result = written.result
    pictures = fan_chart_picture(
        store,
        SALES_HISTORY,
        DEMAND_FORECAST,
        ORIGIN_KEY,
        origin,
        written.chosen,
        settings.quantile_columns,
    )
    return dg.MaterializeResult(
        metadata={
            "rows": result.rows,
            "skus_scored": result.skus_scored,
            "skus_trained": result.skus_trained,
            "train_rows": result.train_rows,
            "engine": written.engine,
            "horizon": settings.horizon,
            "quantiles": ", ".join(settings.quantile_columns),
            "mean_weekly_forecast": round(result.forecast_sum / settings.horizon, 1),
            "target": f"{result.target_transform}, point objective {result.point_objective} "
            f"({result.zero_share:.0%} of observed weeks without demand)",
            "calibration": dg.MetadataValue.md(_calibration_note(result, settings)),
            "plan_weeks": f"{len(written.plan_weeks)} of {settings.horizon}",
            "future_inputs": dg.MetadataValue.md(
                _future_inputs_note(result.planned_share, result.left_out)
            ),
            "inputs_left_out": ", ".join(result.left_out) or "none",
            **timings(written.seconds),
            "peak_memory_mb": peak_memory_mb(),
            "lgbm_params": dg.MetadataValue.json(result.lgbm_params),
            "top_features": dg.MetadataValue.md(
                result.feature_importance.rename("gain share")
                .to_frame()
                .to_markdown(floatfmt=".3f")
            ),
            "path": dg.MetadataValue.path(store.uri_of_path(written.path)),
            **pictures,
            "lake": store.uri,
            "preview": table_preview(result.table),
        }
    )


def _future_inputs_note(planned_share: dict[str, float], left_out: list[str]) -> str:
    if not planned_share and not left_out:
        return "No dynamic inputs: the model uses demand history and calendar features only."
    lines = ["| input | from plans | usual value |", "|---|---|---|"]
    lines += [
        f"| {column} | {share:.1%} | {1 - share:.1%} |" for column, share in planned_share.items()
    ]
    lines += [f"| {column} | left out: not planned | |" for column in left_out]
    return "\n".join(lines)


def _calibration_note(result, settings) -> str:
    if not settings.calibration_weeks:
        return "Off (`calibration_weeks: 0`): the quantile models' own quantiles."
    if result.calibration is None:
        return (
            "Off for this week: the window holds too little history before the "
            f"{settings.calibration_weeks} held-back weeks."
        )
    learned = result.calibration
    # Every horizon of the forecast, as `_assemble` applies them: those past the held-back weeks
    # take the offsets of the last one learned.
    shifts = learned.reindex(range(1, settings.horizon + 1)).ffill().rename_axis("horizon")
    beyond = (
        f" Horizons {len(learned) + 1}..{settings.horizon} use horizon {len(learned)}'s offsets."
        if settings.horizon > len(learned)
        else ""
    )
    point = (
        " The `forecast` column is the factor the relative-error point was scaled by: the one "
        "that minimised its MAPE on those weeks."
        if "forecast" in shifts.columns
        else ""
    )
    return (
        "Quantiles shifted on the log1p scale by these offsets, learned on the "
        f"{len(learned)} latest weeks held back (split-conformal).{beyond}{point}\n\n"
        + shifts.to_markdown(floatfmt=".3f")
    )
