"""Asset checks on `sales_history` (every week) and `demand_forecast` (blocking), run with them.

The rules are `core/quality.py`'s; this module reads the lake, runs them and reports. Each asset's
checks run in one step that reads the data once. A failed forecast check has ERROR severity and
is blocking: in a run that also holds `published_forecast`, that asset does not run.
"""

import datetime as dt
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ..core import quality
from ..core.contract import KEY_COLUMNS
from ..core.progress import Progress
from ..core.quality import QualityResult, Severity
from ..storage import Lake
from .demand_features import DEMAND_FEATURES, ORIGIN_KEY
from .demand_forecast import DEMAND_FORECAST
from .instance import ForecastInstance
from .metadata import preview
from .partitions import partition_week, weeks_in_window
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY
from .sales_history import SALES_HISTORY

__all__ = [
    "FORECAST_CHECKS",
    "SALES_HISTORY_CHECKS",
    "ForecastCheckConfig",
    "SalesHistoryCheckConfig",
    "demand_forecast_checks",
    "demand_forecast_checks_for",
    "sales_history_checks",
    "sales_history_checks_for",
]

SALES_HISTORY_CHECKS = {
    "schema_valid": "Required columns with their types: text SKU keys, float units, prices, "
    "availability and demand, a bool `censored`; any other column numeric.",
    "skus_unique": "Each SKU (article_id, merchant_id) appears once in the week.",
    "values_valid": "Units and demand finite and >= 0, prices finite and > 0, availability 0..1.",
    "weeks_complete": "(warn) No week is missing between the start of the history and this week, "
    "within the history window.",
    "volume_stable": "(warn) The week's total units are within ±max_volume_change of the mean of "
    "the drift_weeks weeks before.",
    "skus_retained": "(warn) At least min_sku_share of last week's SKUs have a row this week.",
}
FORECAST_CHECKS = {
    "covers_active_skus": "Every active SKU of the week's features has exactly H rows (horizons "
    "1..H) and no other SKU is forecast.",
    "values_valid": "No empty cell; point forecast and quantiles finite and >= 0.",
    "quantiles_ordered": "Per row, q10 <= q50 <= q90 (whatever q<percent> columns exist).",
    "within_naive_band": "Each horizon's total forecast lies within "
    "min_naive_ratio..max_naive_ratio × the naive level (mean weekly demand of active SKUs "
    "over the last naive_weeks weeks).",
}
# Partitioned check specs are a preview in Dagster 1.13, and its warning is printed on every load.
# They are what a weekly check is: one evaluation per week, shown on that week's partition.
PARTITIONED_CHECKS = "AssetCheckSpec(partitions_def=...)"
# Recorded by `demand_forecast` in its materialization metadata.
HORIZON_METADATA_KEY = "horizon"
# Forecast rows the forecast checks read at a time (with the same SKUs' features).
CHECK_CHUNK_ROWS = 2_000_000


class SalesHistoryCheckConfig(dg.Config):
    """Thresholds of the warnings on weekly sales (defaults in `core/quality.py`)."""

    history_weeks: int | None = Field(
        None,
        description="Window, ending at the week, in which no week may be missing (None: the "
        "instance's history window).",
    )
    drift_weeks: int = Field(
        quality.DRIFT_WEEKS,
        ge=1,
        description="Previous weeks whose mean volume a week is compared with.",
    )
    max_volume_change: float = Field(
        quality.MAX_VOLUME_CHANGE, description="Allowed relative change of units (0.5 = ±50%)."
    )
    min_sku_share: float = Field(
        quality.MIN_SKU_SHARE, description="Share of last week's SKUs that must be present again."
    )


class ForecastCheckConfig(dg.Config):
    """The horizon every active SKU must cover and the sanity band against the naive forecast."""

    horizon: int | None = Field(
        None, description="H; None: the horizon demand_forecast recorded for the partition."
    )
    naive_weeks: int = Field(
        quality.NAIVE_WEEKS, description="Latest weeks of the window averaged into the naive level."
    )
    min_naive_ratio: float = Field(
        quality.MIN_NAIVE_RATIO, description="Lowest accepted total forecast / naive level."
    )
    max_naive_ratio: float = Field(
        quality.MAX_NAIVE_RATIO, description="Highest accepted total forecast / naive level."
    )


def sales_history_checks_for(instance: ForecastInstance) -> dg.AssetChecksDefinition:
    """The checks on an instance's `sales_history`, over its history window."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # see PARTITIONED_CHECKS
        return _sales_history_checks_for(instance)


def _sales_history_checks_for(instance: ForecastInstance) -> dg.AssetChecksDefinition:
    window = instance.settings.forecast.history_weeks

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=instance.key(SALES_HISTORY),
                description=text,
                partitions_def=instance.partitions,
            )
            for name, text in SALES_HISTORY_CHECKS.items()
        ],
        name=instance.name("sales_history_checks"),
        required_resource_keys={instance.name("lake")},
        retry_policy=STEP_RETRY_POLICY,
        description="Schema, keys, values, missing weeks, volume drift and SKU share of each week.",
        can_subset=True,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, config: SalesHistoryCheckConfig
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        lake = instance.resource(context, "lake")
        yield from sales_history_checks(context, config, lake, window)

    return _checks


def sales_history_checks(
    context: dg.AssetCheckExecutionContext,
    config: SalesHistoryCheckConfig,
    lake: LakeResource,
    window_weeks: int,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Checks every week of the run, reading each week's partition once.

    A history run usually covers a range of weeks (`sales_history` backfills in one run), and an
    `AssetCheckResult` can only speak for the run's single partition. So each week gets its own
    `AssetCheckEvaluation` with its partition, followed by the empty outputs that the framework
    itself emits for an `AssetCheckResult`.
    """
    store = lake.open()
    history_key = context.check_specs[0].asset_key
    if config.history_weeks is None:
        config = config.model_copy(update={"history_weeks": window_weeks})
    weeks = weeks_in_window(context.partition_time_window)
    stored = set(store.partitions(SALES_HISTORY, "week"))
    selected = {key.name for key in context.selected_asset_check_keys}
    # Weekly totals for the drift rule, and the week before for the SKU share: each week read once.
    units: dict[dt.date, float] = {}
    previous: Week | None = None
    for week in [weeks[0] - dt.timedelta(weeks=i) for i in range(config.drift_weeks, 0, -1)]:
        previous = _read_week(store, week, stored, units)
    progress = Progress("checking weekly sales", len(weeks), "weeks", context.log.info)
    # The next week is read (in Arrow, which releases the GIL) while this one is checked.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sales-history-read") as reader:
        upcoming = reader.submit(_read_week, store, weeks[0], stored, units)
        for i, week in enumerate(weeks):
            this = upcoming.result()
            if i + 1 < len(weeks):
                upcoming = reader.submit(_read_week, store, weeks[i + 1], stored, units)
            results = _sales_results(week, this, previous, units, stored, config, selected)
            for name, result in results.items():
                yield dg.AssetCheckEvaluation(
                    asset_key=history_key,
                    check_name=name,
                    passed=result.passed,
                    severity=dg.AssetCheckSeverity(result.severity.value),
                    description=result.description,
                    metadata=_metadata(result),
                    blocking=False,
                    partition=week.isoformat(),
                )
            previous = this
            progress.advance()
    for spec in context.check_specs:
        if spec.name in selected:
            yield dg.Output(None, output_name=spec.get_python_identifier())


@dataclass(frozen=True)
class Week:
    """One week's partition as the checks read it, with its SKU keys sorted once for two rules."""

    frame: pd.DataFrame
    skus: quality.SortedSkus


def _read_week(
    store: Lake, week: dt.date, stored: set[dt.date], units: dict[dt.date, float]
) -> Week | None:
    """The week's partition (None if absent); notes its total units for later weeks' drift."""
    if week not in stored:
        return None
    frame = store.read_partition(SALES_HISTORY, "week", week, arrow_strings=True)
    if "units_sold" in frame.columns:
        units[week] = float(frame["units_sold"].sum())
    return Week(frame, quality.sorted_skus(frame))


def _sales_results(
    week: dt.date,
    this: Week | None,
    previous: Week | None,
    units: dict[dt.date, float],
    stored: set[dt.date],
    config: SalesHistoryCheckConfig,
    selected: set[str],
) -> dict[str, QualityResult]:
    if this is None:
        missing = QualityResult(
            passed=False,
            severity=Severity.ERROR,
            description=f"sales_history has no partition for week {week}: materialize it first.",
        )
        return dict.fromkeys(selected, missing)
    frame = this.frame
    earlier = [week - dt.timedelta(weeks=i) for i in range(1, config.drift_weeks + 1)]
    rules: dict[str, Callable[[], QualityResult]] = {
        "schema_valid": lambda: quality.sales_schema(frame),
        "skus_unique": lambda: quality.sales_unique_skus(frame, this.skus),
        "values_valid": lambda: quality.sales_values_valid(frame),
        "weeks_complete": lambda: quality.sales_weeks_present(stored, week, config.history_weeks),
        "volume_stable": lambda: quality.sales_volume_stable(
            units[week] if week in units else float(frame["units_sold"].sum()),
            {w: units[w] for w in earlier if w in units},
            config.max_volume_change,
        ),
        "skus_retained": lambda: quality.sales_skus_retained(
            frame,
            previous.frame if previous else None,
            config.min_sku_share,
            skus=this.skus,
            previous_skus=previous.skus if previous else None,
        ),
    }
    return {name: _evaluate(rule) for name, rule in rules.items() if name in selected}


def demand_forecast_checks_for(instance: ForecastInstance) -> dg.AssetChecksDefinition:
    """The blocking checks on an instance's `demand_forecast`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # see PARTITIONED_CHECKS
        return _demand_forecast_checks_for(instance)


def _demand_forecast_checks_for(instance: ForecastInstance) -> dg.AssetChecksDefinition:

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=instance.key(DEMAND_FORECAST),
                description=text,
                blocking=True,
                additional_deps=[instance.key(DEMAND_FEATURES)],
                partitions_def=instance.partitions,
            )
            for name, text in FORECAST_CHECKS.items()
        ],
        name=instance.name("demand_forecast_checks"),
        required_resource_keys={instance.name("lake")},
        retry_policy=STEP_RETRY_POLICY,
        description="Coverage, values, quantile order and sanity band of the week's forecast.",
        can_subset=True,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, config: ForecastCheckConfig
    ) -> Iterator[dg.AssetCheckResult]:
        yield from demand_forecast_checks(context, config, instance.resource(context, "lake"))

    return _checks


def demand_forecast_checks(
    context: dg.AssetCheckExecutionContext, config: ForecastCheckConfig, lake: LakeResource
) -> Iterator[dg.AssetCheckResult]:
    """Checks the forecast of the run's origin week against that week's features (blocking).

    The forecast is read in ranges of articles of about `CHECK_CHUNK_ROWS` rows, each with the
    same SKUs' features (`quality.forecast_rules`): at 5M SKUs the whole table and its features
    took more memory than the rest of the run together.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    forecast_window = store.open_window(DEMAND_FORECAST, ORIGIN_KEY, origin, origin)
    if forecast_window is None:
        raise FileNotFoundError(
            f"{DEMAND_FORECAST} has no partition {ORIGIN_KEY}={origin}: materialize "
            f"{DEMAND_FORECAST} for {origin} first."
        )
    features_window = store.open_window(DEMAND_FEATURES, ORIGIN_KEY, origin, origin)
    # Only what the rules read: active SKUs run to the origin week, and the naive level needs
    # the latest weeks; the whole window (millions of SKUs x 156 weeks) never comes in.
    since = pd.Timestamp(origin) - pd.Timedelta(weeks=config.naive_weeks - 1)

    def chunks() -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        for articles in forecast_window.key_ranges(KEY_COLUMNS[0], CHECK_CHUNK_ROWS):
            forecast = store.read_window(
                DEMAND_FORECAST, ORIGIN_KEY, origin, origin,
                ranges={KEY_COLUMNS[0]: articles},
                dates_as_datetime=True, window=forecast_window, arrow_strings=True,
            )  # fmt: skip
            features = store.read_window(
                DEMAND_FEATURES, ORIGIN_KEY, origin, origin,
                columns=[*KEY_COLUMNS, "week", "demand", "active"],
                ranges={KEY_COLUMNS[0]: articles, "week": (since, None)},
                categorical=KEY_COLUMNS, window=features_window,
            )  # fmt: skip
            yield forecast, features

    forecast_key = context.check_specs[0].asset_key
    horizon, horizon_source = _horizon(context, forecast_key, config, store, origin)
    selected = {key.name for key in context.selected_asset_check_keys}
    band = quality.NaiveBand(config.naive_weeks, config.min_naive_ratio, config.max_naive_ratio)
    results = quality.forecast_rules(chunks(), horizon, selected & set(FORECAST_CHECKS), band)
    for name in FORECAST_CHECKS:
        if name not in results:
            continue
        result = results[name]
        extra = {"horizon_source": horizon_source} if name == "covers_active_skus" else {}
        yield dg.AssetCheckResult(
            asset_key=forecast_key,
            check_name=name,
            passed=result.passed,
            severity=dg.AssetCheckSeverity(result.severity.value),
            description=result.description,
            metadata={**_metadata(result), **extra},
        )


def _horizon(
    context: dg.AssetCheckExecutionContext,
    forecast_key: dg.AssetKey,
    config: ForecastCheckConfig,
    store: Lake,
    origin: dt.date,
) -> tuple[int, str]:
    """H from the check's config, else as `demand_forecast` recorded it for this partition.

    The table's own largest horizon is only the last resort: it cannot tell a forecast cut short
    for every SKU from a shorter configured horizon.
    """
    if config.horizon is not None:
        return config.horizon, "check config"
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=forecast_key, asset_partitions=[context.partition_key]),
        limit=1,
    ).records
    recorded = records[0].asset_materialization if records else None
    if recorded is not None and HORIZON_METADATA_KEY in recorded.metadata:
        return int(recorded.metadata[HORIZON_METADATA_KEY].value), "demand_forecast metadata"
    steps = store.read_window(DEMAND_FORECAST, ORIGIN_KEY, origin, origin, columns=["horizon"])
    return int(pd.to_numeric(steps["horizon"]).max()), "largest horizon in the table"


def _evaluate(rule: Callable[[], QualityResult]) -> QualityResult:
    """Runs a rule; a missing column fails it with a pointer to the schema instead of crashing."""
    try:
        return rule()
    except KeyError as error:
        return quality.cannot_evaluate(error)


def _metadata(result: QualityResult) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(result.metadata)
    if not result.sample.empty:
        metadata["sample"] = preview(result.sample, rows=quality.SAMPLE_ROWS)
    return metadata
