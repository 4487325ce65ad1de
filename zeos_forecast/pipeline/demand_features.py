"""`demand_features`: the feature frame of the sliding history window ending at each origin week."""

import datetime as dt
import functools
import itertools
import math
import time
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pyarrow as pa

from ..core.compute import shard_executor
from ..core.contract import KEY_COLUMNS, LandingDataError, validate_metadata
from ..core.feature_shards import (
    FeatureShardJob,
    WindowSummary,
    build_feature_shard,
    feature_inputs,
    shift_sku,
)
from ..core.features import StaticTable, dynamic_columns, static_columns
from ..core.history import HistoryTooShortError, require_history
from ..core.progress import Progress
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, ROW_GROUP_ROWS, Lake
from .config import WindowConfig, window_config
from .conventions import TABLE_SCHEMAS, with_row_count_and_uri
from .instance import ForecastInstance
from .metadata import peak_memory_mb, preview
from .partitions import partition_week
from .resources import ComputeResource, LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY

__all__ = ["DEMAND_FEATURES", "demand_features", "demand_features_asset", "history_window"]

DEMAND_FEATURES = "demand_features"
ORIGIN_KEY = "forecast_week"


def history_window(history_weeks: int) -> dg.TimeWindowPartitionMapping:
    """Lineage: partition W depends on the `history_weeks` sales_history weeks ending at W."""
    return dg.TimeWindowPartitionMapping(start_offset=-(history_weeks - 1), end_offset=0)


def demand_features_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`demand_features` of an instance: its window is the lineage and the run config's default."""
    settings = instance.settings.forecast
    config_type = window_config(settings)

    @dg.asset(
        key=instance.key(DEMAND_FEATURES),
        deps=[
            dg.AssetDep(
                instance.key(SALES_HISTORY),
                partition_mapping=history_window(settings.history_weeks),
            )
        ],
        required_resource_keys={instance.name("lake"), instance.name("compute")},
        retry_policy=STEP_RETRY_POLICY,
        kinds={"parquet", "pandas"},
        **instance.asset_attributes("demand", demand_features, TABLE_SCHEMAS[DEMAND_FEATURES]),
    )
    def _asset(context: dg.AssetExecutionContext, config: config_type) -> dg.MaterializeResult:
        lake, compute = instance.resource(context, "lake"), instance.resource(context, "compute")
        return with_row_count_and_uri(demand_features(context, config, lake, compute))

    return _asset


def demand_features(
    context: dg.AssetExecutionContext,
    config: WindowConfig,
    lake: LakeResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """Training and scoring frame for origin week W: every SKU's weekly history in the window.

    Reads the window's `sales_history` straight from the parquet dataset (a week filter, not a
    fan-in of partitions), fills gaps and stockouts from each SKU's own recent demand with zero
    training weight, carries prices forward, adds discount depth and article/merchant metadata as
    static features. A window larger than the memory budget is built in shards of articles (a
    key-range read each), written one after the other into the same file. Writes
    `demand_features/forecast_week=W/part-0.parquet`, sorted by SKU, every row group holding
    whole SKUs. A window with fewer than `min_history_weeks` weeks of sales rows is refused: the
    run fails saying so, and nothing downstream (forecast, publication) runs.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    first = origin - dt.timedelta(weeks=config.history_weeks - 1)
    weeks = store.partitions(SALES_HISTORY, "week")
    if origin not in weeks:
        raise dg.Failure(
            f"sales_history has no partition for the origin week {origin}: "
            f"materialize sales_history for {origin} first.",
            allow_retries=False,
        )
    started = time.perf_counter()
    rows_per_week = {
        w: store.partition_rows(SALES_HISTORY, "week", w) for w in weeks if first <= w <= origin
    }
    weeks_with_sales = [w for w, rows in rows_per_week.items() if rows > 0]
    try:
        require_history(weeks_with_sales, origin, config.history_weeks, config.min_history_weeks)
    except HistoryTooShortError as error:
        raise dg.Failure(
            str(error), metadata={"weeks_with_sales": len(weeks_with_sales)}, allow_retries=False
        ) from error
    history_rows = sum(rows_per_week.values())
    engine = compute.settings().resolve(history_rows)
    mode = engine.engine
    bounds = _article_bounds(store, origin, math.ceil(history_rows / engine.shard_rows))
    context.log.info(
        f"{history_rows:,} sales_history rows in {first} .. {origin}: engine {mode}, "
        f"{len(bounds)} shard(s) of articles."
    )
    window = store.open_window(SALES_HISTORY, "week", first, origin)  # once, not per shard
    read_history = functools.partial(
        store.read_window,
        SALES_HISTORY,
        "week",
        first,
        origin,
        columns=feature_inputs(window.schema.names),
        categorical=KEY_COLUMNS,
        dates_as_datetime=True,
        window=window,
    )
    articles, merchants = _metadata(store)
    job = FeatureShardJob(
        read_history=read_history,
        origin=origin,
        history_weeks=config.history_weeks,
        active_weeks=config.active_weeks,
        censored_as_demand=config.censored_as_demand,
        articles=StaticTable.prepare(articles, "article_id"),
        merchants=StaticTable.prepare(merchants, "merchant_id"),
        whole_window=len(bounds) == 1,
        row_group_rows=ROW_GROUP_ROWS if mode == "memory" else None,
        on_workers=mode == "dask",
    )
    summary = WindowSummary()
    progress = Progress("building features", len(bounds), "shards", context.log.info)

    def shards(executor) -> Iterator[pa.Table]:
        for built in executor.map(build_feature_shard, (job,), bounds):
            if built is not None:
                tables, part = built
                offset = summary.skus  # SKU numbers run on across shards
                summary.merge(part)
                yield from (shift_sku(table, offset) for table in tables)
            progress.advance()

    try:
        with shard_executor(mode, engine, context.log.info) as executor:
            path, rows = store.write_partition_batches(
                DEMAND_FEATURES, ORIGIN_KEY, origin, shards(executor), footer=summary.footer
            )
    except ValueError as error:
        raise dg.Failure(str(error), allow_retries=False) from error
    unknown = {
        "skus_without_article_metadata": summary.without_article,
        "skus_without_merchant_metadata": summary.without_merchant,
    }
    for name, count in unknown.items():
        if count:
            context.log.warning(f"{name}: {count:,} (their static features are empty)")
    head = summary.head
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "skus": summary.skus,
            "active_skus": summary.active_skus,
            "weeks_of_history": summary.weeks,
            "weeks_with_sales": len(weeks_with_sales),
            "min_history_weeks": config.min_history_weeks,
            "first_week": str(summary.first_week.date()),
            "unobserved_share": round(summary.unobserved / max(rows, 1), 4),
            "dynamic_features": ", ".join(dynamic_columns(head)),
            "static_features": ", ".join(static_columns(head)) or "none",
            **unknown,
            "engine": mode,
            "shards": len(bounds),
            "seconds": round(time.perf_counter() - started, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of_path(path)),
            "preview": preview(head.drop(columns="sku")),
        }
    )


def _article_bounds(
    store: Lake, origin: dt.date, shards: int
) -> list[tuple[str | None, str | None]]:
    """Half-open article_id ranges, about equally many SKUs of the origin week in each.

    A SKU's rows all fall in one range (it is keyed by its article), whichever weeks it sold in;
    the ranges together cover every possible key, so no SKU of the window is left out.
    """
    if shards <= 1:
        return [(None, None)]
    keys = store.read_window(SALES_HISTORY, "week", origin, origin, columns=["article_id"])
    articles = np.sort(keys["article_id"].astype(str).to_numpy())
    cuts = np.unique(articles[np.linspace(0, len(articles), shards + 1)[1:-1].astype(int)])
    edges = [None, *cuts.tolist(), None]
    return list(itertools.pairwise(edges))


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
