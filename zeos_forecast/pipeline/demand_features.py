"""`demand_features`: the feature frame of the sliding history window ending at each origin week."""

import datetime as dt
import itertools
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.contract import KEY_COLUMNS, LandingDataError, validate_metadata
from ..core.engine import FOOTER_KEY, WindowStats, shard_executor
from ..core.features import build_demand_features, dynamic_columns, static_columns
from ..core.progress import Progress
from ..core.settings import ForecastSettings
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, ROW_GROUP_ROWS, Lake
from .config import WindowConfig
from .metadata import peak_memory_mb, preview
from .partitions import partition_week, weekly_partitions
from .resources import ComputeResource, LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY, sales_history

__all__ = ["DEMAND_FEATURES", "demand_features"]

DEMAND_FEATURES = "demand_features"
ORIGIN_KEY = "forecast_week"
# The history columns features are built from (the rest of a drop's numeric columns too).
_NOT_READ = ("censored",)

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
    whole SKUs.
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
    history_rows = sum(
        store.partition_rows(SALES_HISTORY, "week", w) for w in weeks if first <= w <= origin
    )
    engine = compute.settings().resolve(history_rows)
    mode = engine.engine
    bounds = _article_bounds(store, origin, math.ceil(history_rows / engine.shard_rows))
    context.log.info(
        f"{history_rows:,} sales_history rows in {first} .. {origin}: engine {mode}, "
        f"{len(bounds)} shard(s) of articles."
    )
    job = _ShardJob(
        store=store,
        first=first,
        origin=origin,
        config=config,
        metadata=_metadata(store),
        whole_window=len(bounds) == 1,
        row_group_rows=ROW_GROUP_ROWS if mode == "memory" else None,
        on_workers=mode == "dask",
    )
    summary = _Summary()

    def shards() -> Iterator[pa.Table]:
        progress = Progress("building features", len(bounds), "shards", context.log.info)
        with shard_executor(mode, engine, context.log.info) as executor:
            for built in executor.map(_feature_shard, (job,), bounds):
                if built is not None:
                    tables, part = built
                    offset = summary.skus  # SKU numbers run on across shards
                    summary.merge(part)
                    yield from (_shift_sku(table, offset) for table in tables)
                progress.advance()

    try:
        path, rows = store.write_partition_batches(
            DEMAND_FEATURES, ORIGIN_KEY, origin, shards(), footer=summary.footer
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


@dataclass(frozen=True)
class _ShardJob:
    """What every shard of one window shares (picklable: Dask workers build shards too)."""

    store: Lake
    first: dt.date
    origin: dt.date
    config: WindowConfig
    metadata: tuple[pd.DataFrame | None, pd.DataFrame | None]
    whole_window: bool
    row_group_rows: int | None
    on_workers: bool


def _feature_shard(
    job: _ShardJob, bounds: tuple[str | None, str | None]
) -> tuple[Iterable[pa.Table], "_Summary"] | None:
    """The feature tables of one article range, SKUs numbered from 0, and their summary.

    In the run's own process the tables are made one at a time as the writer takes them (one
    table beside the frame in memory); a worker sends them all back at once.
    """
    history = job.store.read_window(
        SALES_HISTORY,
        "week",
        job.first,
        job.origin,
        ranges=None if job.whole_window else {"article_id": bounds},
        categorical=KEY_COLUMNS,
        dates_as_datetime=True,
    )
    history = history.drop(columns=[c for c in _NOT_READ if c in history])
    if history.empty:
        return None
    articles, merchants = job.metadata
    frame = build_demand_features(
        history,
        job.origin,
        job.config.history_weeks,
        job.config.active_weeks,
        articles=articles,
        merchants=merchants,
        censored_as_demand=job.config.censored_as_demand,
        keep_empty_columns=not job.whole_window,
    )
    del history
    summary = _Summary()
    summary.add(frame, articles, merchants)
    tables = _sku_aligned_tables(frame, job.row_group_rows)
    return (list(tables) if job.on_workers else tables), summary


def _shift_sku(table: pa.Table, offset: int) -> pa.Table:
    if offset == 0:
        return table
    index = table.schema.get_field_index("sku")
    shifted = pc.add(table["sku"], pa.scalar(offset, table.schema.field(index).type))
    return table.set_column(index, "sku", shifted)


class _Summary:
    """What the metadata says about the frame, accumulated shard by shard."""

    def __init__(self) -> None:
        self.skus = self.active_skus = self.unobserved = self.weeks = 0
        self.observed = self.zero = 0
        self.categories: dict[str, list[str]] = {}
        self.without_article = self.without_merchant = 0
        self.first_week = pd.Timestamp.max
        self.head = pd.DataFrame()

    def add(self, frame: pd.DataFrame, articles, merchants) -> None:
        firsts = frame.drop_duplicates("sku")
        self.skus += len(firsts)
        self.active_skus += int(firsts["active"].sum())
        self.unobserved += int((~frame["observed"]).sum())
        trained = frame["weight"].to_numpy() > 0
        self.observed += int(trained.sum())
        self.zero += int((frame["demand"].to_numpy()[trained] <= 0).sum())
        for column in static_columns(frame):
            if isinstance(frame[column].dtype, pd.CategoricalDtype):
                self.categories[column] = frame[column].cat.categories.astype(str).tolist()
        self.first_week = min(self.first_week, frame["week"].min())
        self.weeks = max(self.weeks, int(frame["week"].nunique()))
        self.without_article += _skus_without(firsts, articles, "article_id")
        self.without_merchant += _skus_without(firsts, merchants, "merchant_id")
        if self.head.empty:
            self.head = frame.head(1_000)

    def merge(self, other: "_Summary") -> None:
        """Adds the summary of the next shard (whose SKUs follow this one's)."""
        for name in ("skus", "active_skus", "unobserved", "observed", "zero"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.without_article += other.without_article
        self.without_merchant += other.without_merchant
        self.categories.update(other.categories)
        self.first_week = min(self.first_week, other.first_week)
        self.weeks = max(self.weeks, other.weeks)
        if self.head.empty:
            self.head = other.head

    def footer(self) -> dict[str, str]:
        """Totals the forecast step needs before it reads a row (`core.engine.WindowStats`)."""
        stats = WindowStats(
            observed_rows=self.observed,
            zero_share=self.zero / max(self.observed, 1),
            skus=self.skus,
            active_skus=self.active_skus,
            categories=self.categories,
        )
        return {FOOTER_KEY: stats.to_json()}


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


def _sku_aligned_tables(frame: pd.DataFrame, rows: int | None) -> Iterator[pa.Table]:
    """The frame as tables of about `rows` rows (None: one), never splitting a SKU."""
    if rows is None or len(frame) <= rows:
        yield pa.Table.from_pandas(frame, preserve_index=False)
        return
    sku = frame["sku"].to_numpy()
    starts = np.flatnonzero(np.r_[True, sku[1:] != sku[:-1]])  # where each SKU's rows begin
    wanted = np.searchsorted(starts, np.arange(rows, len(frame), rows))
    cuts = np.unique(starts[wanted[wanted < len(starts)]])
    for begin, end in itertools.pairwise([0, *cuts.tolist(), len(frame)]):
        if end > begin:
            yield pa.Table.from_pandas(frame.iloc[begin:end], preserve_index=False)


def _skus_without(firsts: pd.DataFrame, metadata: pd.DataFrame | None, key: str) -> int:
    """SKUs whose `key` has no row in the metadata (the contract allows it: empty features)."""
    keys = firsts[key].astype(str)
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
