"""`forecast_accuracy`: once a week's sales are in, how good was every forecast that covered it."""

import datetime as dt
import time

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..core.accuracy import (
    BASELINES,
    MOVING_AVERAGE_WEEKS,
    OURS,
    RECENT_STOCKOUT_WEEKS,
    metric_label,
    score_week,
    summarize,
)
from ..core.contract import KEY_COLUMNS
from ..core.settings import quantile_column
from .conventions import with_row_count_and_uri
from .demand_features import ORIGIN_KEY
from .demand_forecast import DEMAND_FORECAST
from .instance import ForecastInstance
from .metadata import peak_memory_mb
from .partitions import partition_week
from .pictures import accuracy_pictures
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY
from .sales_history import SALES_HISTORY

__all__ = [
    "FORECAST_ACCURACY",
    "MAX_SCORED_HORIZON",
    "forecast_accuracy",
    "forecast_accuracy_asset",
]

FORECAST_ACCURACY = "forecast_accuracy"
# The numbers plotted over the partitions: point metrics per model, quantile metrics of ours.
HEADLINE_METRICS = ("wape", "bias", "mape")
HEADLINE_QUANTILE_PREFIXES = ("coverage_", "interval_coverage")
# Forecasts made up to this many weeks before a week are scored on it.
MAX_SCORED_HORIZON = 52
# Sales history the baselines need: the seasonal week and the moving average of the oldest origin.
_HISTORY_WEEKS = MAX_SCORED_HORIZON + max(MOVING_AVERAGE_WEEKS, RECENT_STOCKOUT_WEEKS)


def forecast_accuracy_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`forecast_accuracy` of an instance."""

    @dg.asset(
        key=instance.key(FORECAST_ACCURACY),
        deps=[
            dg.AssetDep(
                instance.key(SALES_HISTORY),
                partition_mapping=dg.TimeWindowPartitionMapping(-_HISTORY_WEEKS, 0),
            ),
            dg.AssetDep(
                instance.key(DEMAND_FORECAST),
                partition_mapping=dg.TimeWindowPartitionMapping(-MAX_SCORED_HORIZON, -1),
            ),
        ],
        required_resource_keys={instance.name("lake")},
        retry_policy=STEP_RETRY_POLICY,
        kinds={"parquet", "pandas"},
        **instance.asset_attributes("accuracy", forecast_accuracy),
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return with_row_count_and_uri(
            forecast_accuracy(context, instance.resource(context, "lake"))
        )

    return _asset


def forecast_accuracy(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """How every forecast that covered week W did, per horizon, next to naive baselines.

    Partition W scores the forecasts made at origins W-52 .. W-1 against the sales of W (fully
    stocked rows only: censored sales understate demand): MAPE, WAPE, bias, MAE% + |bias%|,
    pinball loss and coverage per quantile, interval coverage. The naive, seasonal naive and
    13-week moving average baselines are computed here from the same history, as of each origin.
    Writes additive components to `forecast_accuracy/week=W/part-0.parquet` (one row per origin,
    horizon and model), so any set of weeks sums up exactly; `zeos-forecast backtest` does that.
    Without sales for W yet, or without forecasts that covered it, the run says so and succeeds.
    Metrics are shown in %, each described; beside the partition, `_accuracy_by_horizon.png`
    (ours against each baseline) and `_accuracy_over_weeks.png` (the scored weeks up to W).
    """
    store = lake.open()
    week = partition_week(context.partition_key)
    started = time.perf_counter()
    if week not in store.partitions(SALES_HISTORY, "week"):
        message = f"No actuals for {week} yet: sales_history has no partition for it."
        context.log.info(message)
        return dg.MaterializeResult(metadata={"status": message, "scored_forecasts": 0})
    first_origin = week - dt.timedelta(weeks=MAX_SCORED_HORIZON)
    last_origin = week - dt.timedelta(weeks=1)
    forecasts = store.read_window(
        DEMAND_FORECAST, ORIGIN_KEY, first_origin, last_origin, equals={"week": week}
    )
    if forecasts.empty:
        message = f"No forecast made before {week} covers it: nothing to score."
        context.log.info(message)
        return dg.MaterializeResult(metadata={"status": message, "scored_forecasts": 0})
    actuals = store.read_partition(SALES_HISTORY, "week", week)
    history = store.read_window(
        SALES_HISTORY,
        "week",
        week - dt.timedelta(weeks=_HISTORY_WEEKS),
        last_origin,
        columns=[*KEY_COLUMNS, "week", "units_sold", "availability"],
    )
    quantiles = sorted(
        (c for c in forecasts.columns if _is_quantile(c)), key=lambda c: float(c[1:])
    )
    components = score_week(actuals, forecasts, history, quantiles)
    if components.empty:
        message = (
            f"The forecasts of {week} could not be scored: none of their SKUs was fully in stock "
            "with a sales row that week."
        )
        context.log.info(message)
        return dg.MaterializeResult(metadata={"status": message, "scored_forecasts": 0})
    store.write_partition(
        FORECAST_ACCURACY, "week", week, pa.Table.from_pandas(components, preserve_index=False)
    )
    by_horizon = summarize(components, ["model", "horizon"])
    overall = summarize(components, ["model"]).set_index("model")
    censored = int((actuals["availability"] < 1.0).sum())
    context.log.info(
        f"Scored {forecasts[ORIGIN_KEY].nunique()} forecasts of {week} on "
        f"{len(actuals) - censored:,} SKUs ({censored:,} censored SKU-weeks left out)."
    )
    return dg.MaterializeResult(
        metadata={
            "status": "scored",
            "scored_forecasts": int(forecasts[ORIGIN_KEY].nunique()),
            "origins": f"{forecasts[ORIGIN_KEY].min()} .. {forecasts[ORIGIN_KEY].max()}",
            "rows_scored": int(overall.loc[OURS, "rows"]),
            "censored_left_out": censored,
            **_headline(overall),
            "metrics": dg.MetadataValue.md(_metrics_table(overall)),
            **accuracy_pictures(store, FORECAST_ACCURACY, week, by_horizon, OURS),
            "by_horizon": dg.MetadataValue.md(_table(by_horizon)),
            "seconds": round(time.perf_counter() - started, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of(FORECAST_ACCURACY, f"week={week}")),
            "lake": store.uri,
        }
    )


def _is_quantile(column: str) -> bool:
    try:
        return column.startswith("q") and quantile_column(float(column[1:]) / 100) == column
    except ValueError:
        return False


def _headline(overall: pd.DataFrame) -> dict[str, float]:
    """Numbers in % per model, which the UI plots over the partitions (Asset → Plots).

    Named as people say them (`WAPE % (zeos)`); what each means is in the `metrics` table.
    """
    values = {}
    for model in [OURS, *BASELINES]:
        for metric in HEADLINE_METRICS:
            value = overall.loc[model, metric] if model in overall.index else float("nan")
            values[f"{metric_label(metric)[0]} % ({model})"] = _percent(value)
    ours = overall.loc[OURS]
    for column in [c for c in overall.columns if c.startswith(HEADLINE_QUANTILE_PREFIXES)]:
        values[f"{metric_label(column)[0]} % ({OURS})"] = _percent(ours[column])
    return values


def _metrics_table(overall: pd.DataFrame) -> str:
    """Every metric of the week in %, one column per model, with what it means."""
    models = [m for m in [OURS, *BASELINES] if m in overall.index]
    columns = [c for c in overall.columns if c != "rows" and overall[c].notna().any()]
    lines = [
        f"| metric | {' | '.join(models)} | what it means |",
        "|---" * (len(models) + 2) + "|",
    ]
    for column in columns:
        name, meaning = metric_label(column)
        cells = [_percent_text(overall.loc[m, column]) for m in models]
        lines.append(f"| {_cell(name)} % | {' | '.join(cells)} | {_cell(meaning)} |")
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> str:
    """The summary per model and horizon, its ratios in %."""
    shown = frame.dropna(axis="columns", how="all").copy()
    ratios = [c for c in shown.columns if c not in ("model", "horizon", "rows")]
    shown[ratios] = shown[ratios] * 100
    shown = shown.rename(columns={c: _cell(f"{metric_label(c)[0]} %") for c in ratios})
    return shown.to_markdown(index=False, floatfmt=".1f", missingval="–")


def _cell(text: str) -> str:
    """Text inside a markdown table cell: its own `|` must not end the cell."""
    return text.replace("|", "\\|")


def _percent(value: float) -> float:
    return round(100 * float(value), 2)


def _percent_text(value: float) -> str:
    return "–" if pd.isna(value) else f"{100 * float(value):.1f}"
