"""`demand_features`: the feature frame of the sliding history window ending at each origin week."""

import datetime as dt
import time

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..core.contract import LandingDataError, validate_metadata
from ..core.features import build_demand_features, dynamic_columns, static_columns
from ..core.settings import ForecastSettings
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, Lake
from .config import WindowConfig
from .metadata import peak_memory_mb, preview
from .partitions import partition_week, weekly_partitions
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY, sales_history

__all__ = ["DEMAND_FEATURES", "demand_features"]

DEMAND_FEATURES = "demand_features"
ORIGIN_KEY = "forecast_week"

# Lineage: partition W depends on the default window of sales_history weeks ending at W.
_WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-(ForecastSettings().history_weeks - 1), end_offset=0
)


@dg.asset(
    partitions_def=weekly_partitions,
    deps=[dg.AssetDep(sales_history, partition_mapping=_WINDOW)],
    retry_policy=STEP_RETRY_POLICY,
    group_name="demand",
    kinds={"parquet", "pandas"},
)
def demand_features(
    context: dg.AssetExecutionContext, config: WindowConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Training and scoring frame for origin week W: every SKU's weekly history in the window.

    Reads the window's `sales_history` straight from the parquet dataset (a week filter, not a
    fan-in of partitions), fills gaps and stockouts from each SKU's own recent demand with zero
    training weight, carries prices forward, adds discount depth and article/merchant metadata as
    static features. Writes `demand_features/forecast_week=W/part-0.parquet`.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    first = origin - dt.timedelta(weeks=config.history_weeks - 1)
    if origin not in store.partitions(SALES_HISTORY, "week"):
        raise dg.Failure(
            f"sales_history has no partition for the origin week {origin}: "
            f"materialize sales_history for {origin} first.",
            allow_retries=False,
        )
    started = time.perf_counter()
    history = store.read_window(SALES_HISTORY, "week", first, origin)
    context.log.info(f"Read {len(history):,} sales_history rows for {first} .. {origin}.")
    articles, merchants = _metadata(store)
    frame = build_demand_features(
        history,
        origin,
        config.history_weeks,
        config.active_weeks,
        articles=articles,
        merchants=merchants,
        censored_as_demand=config.censored_as_demand,
    )
    del history
    unknown = {
        "skus_without_article_metadata": _skus_without(frame, articles, "article_id"),
        "skus_without_merchant_metadata": _skus_without(frame, merchants, "merchant_id"),
    }
    for name, count in unknown.items():
        if count:
            context.log.warning(f"{name}: {count:,} (their static features are empty)")
    path = store.write_partition(
        DEMAND_FEATURES, ORIGIN_KEY, origin, pa.Table.from_pandas(frame, preserve_index=False)
    )
    weeks = frame["week"].nunique()
    return dg.MaterializeResult(
        metadata={
            "rows": len(frame),
            "skus": int(frame["sku"].nunique()),
            "active_skus": int(frame.loc[frame["active"], "sku"].nunique()),
            "weeks_of_history": int(weeks),
            "first_week": str(frame["week"].min().date()),
            "unobserved_share": round(float(1 - frame["observed"].mean()), 4),
            "dynamic_features": ", ".join(dynamic_columns(frame)),
            "static_features": ", ".join(static_columns(frame)) or "none",
            **unknown,
            "seconds": round(time.perf_counter() - started, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of_path(path)),
            "preview": preview(frame.drop(columns="sku")),
        }
    )


def _skus_without(frame: pd.DataFrame, metadata: pd.DataFrame | None, key: str) -> int:
    """SKUs whose `key` has no row in the metadata (the contract allows it: empty features)."""
    keys = frame.drop_duplicates("sku")[key].astype(str)
    known = set() if metadata is None else set(metadata[key])
    return int((~keys.isin(known)).sum())


def _metadata(store: Lake):
    try:
        articles = validate_metadata(
            [(f.path, f.frame) for f in store.read_metadata(LANDING_ARTICLES)], "article_id"
        )
        merchants = validate_metadata(
            [(f.path, f.frame) for f in store.read_metadata(LANDING_MERCHANTS)], "merchant_id"
        )
    except LandingDataError as error:
        raise landing_failure(error) from error
    return articles, merchants
