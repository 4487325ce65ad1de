"""`demand_forecast`: train LightGBM on the window and score every active SKU, in one step."""

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..core.compute import FOOTER_KEY, ShardedInput, WindowStats, shard_executor
from ..core.contract import LandingDataError, validate_plan_drop
from ..core.plots import SkuPicker
from ..storage import Lake
from .config import ForecastConfig, forecast_config
from .conventions import forecast_schema, with_row_count_and_uri
from .demand_features import DEMAND_FEATURES, ORIGIN_KEY
from .instance import ForecastInstance
from .metadata import peak_memory_mb, table_preview, timings
from .partitions import partition_week
from .pictures import fan_chart_picture
from .resources import ComputeResource, LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY

__all__ = ["DEMAND_FORECAST", "demand_forecast", "demand_forecast_asset", "horizon_plans"]

DEMAND_FORECAST = "demand_forecast"


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
    # The model libraries load with the step that uses them, not with the code location (which
    # every webserver, daemon and run process imports): ~4 s of imports on 2 cores.
    from ..core.engine import train_and_score_sharded
    from ..core.model import train_and_score

    store = lake.open()
    origin = partition_week(context.partition_key)
    settings = config.settings()
    started = time.perf_counter()
    groups, rows = store.partition_layout(DEMAND_FEATURES, ORIGIN_KEY, origin)
    plans, plan_weeks = horizon_plans(store, origin, settings.horizon)
    engine = compute.settings().resolve(rows)
    mode = engine.engine
    picker = SkuPicker(seed=settings.seed)
    context.log.info(f"Training on {rows:,} feature rows with engine {mode}.")
    if mode == "memory":
        features = store.read_partition(DEMAND_FEATURES, ORIGIN_KEY, origin)
        read_seconds = time.perf_counter() - started
        result = train_and_score(features, origin, settings, report=context.log.info, plans=plans)
        del features
        picker.add(result.table)
        started = time.perf_counter()
        path = store.write_partition(
            DEMAND_FORECAST, ORIGIN_KEY, origin, _with_run_id(result.table, context.run_id)
        )
        seconds = {"read": read_seconds, **result.seconds, "write": time.perf_counter() - started}
    else:
        footer = store.partition_footer(DEMAND_FEATURES, ORIGIN_KEY, origin)
        source = ShardedInput(
            read=store.row_group_reader(DEMAND_FEATURES, ORIGIN_KEY, origin),
            groups=groups,
            rows=rows,
            stats=WindowStats.from_json(footer[FOOTER_KEY]) if FOOTER_KEY in footer else None,
        )
        written: dict[str, str] = {}

        def sink(tables: Iterator[pd.DataFrame]) -> None:
            batches = (_with_run_id(_seen(t, picker), context.run_id) for t in tables)
            written["path"], _ = store.write_partition_batches(
                DEMAND_FORECAST, ORIGIN_KEY, origin, batches
            )

        with shard_executor(mode, engine, context.log.info) as executor:
            result = train_and_score_sharded(
                source, origin, settings, sink, engine, context.log.info, plans, executor
            )
        path = written["path"]
        seconds = result.seconds
    pictures = fan_chart_picture(
        store,
        SALES_HISTORY,
        DEMAND_FORECAST,
        ORIGIN_KEY,
        origin,
        picker.chosen(),
        settings.quantile_columns,
    )
    return dg.MaterializeResult(
        metadata={
            "rows": result.rows,
            "skus_scored": result.skus_scored,
            "skus_trained": result.skus_trained,
            "train_rows": result.train_rows,
            "engine": mode,
            "horizon": settings.horizon,
            "quantiles": ", ".join(settings.quantile_columns),
            "mean_weekly_forecast": round(result.forecast_sum / settings.horizon, 1),
            "target": f"{result.target_transform}, point objective {result.point_objective} "
            f"({result.zero_share:.0%} of observed weeks without demand)",
            "calibration": dg.MetadataValue.md(_calibration_note(result, settings)),
            "plan_weeks": f"{len(plan_weeks)} of {settings.horizon}",
            "future_inputs": dg.MetadataValue.md(_future_inputs_note(result.planned_share)),
            **timings(seconds),
            "peak_memory_mb": peak_memory_mb(),
            "lgbm_params": dg.MetadataValue.json(result.lgbm_params),
            "top_features": dg.MetadataValue.md(
                result.feature_importance.rename("gain share")
                .to_frame()
                .to_markdown(floatfmt=".3f")
            ),
            "path": dg.MetadataValue.path(store.uri_of_path(path)),
            **pictures,
            "lake": store.uri,
            "preview": table_preview(result.table),
        }
    )


def _seen(table: pd.DataFrame, picker: SkuPicker) -> pd.DataFrame:
    picker.add(table)
    return table


def _with_run_id(frame: pd.DataFrame, run_id: str) -> pa.Table:
    """The forecast rows as Arrow, with the run that wrote them (repeated in Arrow, not pandas)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), len(table)))


def horizon_plans(
    store: Lake, origin: dt.date, horizon: int
) -> tuple[pd.DataFrame | None, list[dt.date]]:
    """The validated plans for the horizon's weeks that have one (None when there are none)."""
    horizon_weeks = {origin + dt.timedelta(weeks=h) for h in range(1, horizon + 1)}
    weeks = [week for week in store.plan_weeks() if week in horizon_weeks]
    frames = []
    for week in weeks:
        try:
            files = store.read_plan_drop(week)
            frames.append(validate_plan_drop([(f.path, f.frame) for f in files], week))
        except LandingDataError as error:
            raise landing_failure(error) from error
    return (pd.concat(frames, ignore_index=True) if frames else None), weeks


def _future_inputs_note(planned_share: dict[str, float]) -> str:
    if not planned_share:
        return "No dynamic inputs: the model uses demand history and calendar features only."
    lines = ["| input | from plans | usual value |", "|---|---|---|"]
    lines += [
        f"| {column} | {share:.1%} | {1 - share:.1%} |" for column, share in planned_share.items()
    ]
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
