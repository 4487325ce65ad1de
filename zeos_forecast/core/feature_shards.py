"""Feature shards: the window's feature frame built one article range at a time.

A shard task reads its article range of the sales history, builds that part of the feature frame
and summarises it; the shard becomes its own part of the partition, written by the task itself on
a Dask worker (no row travels to the run) or by the run's writer thread in the run's own process.
The run adds up the summaries and publishes the parts, in order. Tasks run in the run's process or
on Dask workers (everything here pickles, and nothing here imports Dagster, so a worker imports
only what a shard needs).

SKU numbers are unique in the window and increase in key order: shard n numbers its SKUs from
n × `SHARD_SKUS`, so that no shard needs to know how many SKUs the shards before it hold.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from .compute import FOOTER_KEY, WindowStats
from .features import RETURNING_SKUS, StaticTable, build_demand_features, static_columns

__all__ = [
    "SHARD_SKUS",
    "FeatureShardJob",
    "WindowSummary",
    "build_feature_shard",
    "feature_inputs",
]

ArticleRange = tuple[str | None, str | None]
# History columns the features do not use (dropped as soon as they are read).
NOT_FEATURE_INPUTS = ("censored",)
# Rows of the frame kept for the preview and the column lists of the metadata.
HEAD_ROWS = 1_000
# SKU numbers reserved per shard: shard n's SKUs are n * SHARD_SKUS + 0, 1, ... (a shard is
# bounded by the engine's shard rows, far below a billion SKUs).
SHARD_SKUS = 1_000_000_000


@dataclass(frozen=True)
class FeatureShardJob:
    """What every shard of one window shares.

    Attributes:
        read_history: `read_history(ranges)` returns the window's sales history rows with
            `low <= article_id < high` for `ranges={"article_id": (low, high)}` (None: all), of
            the `feature_inputs` columns.
        origin, history_weeks, active_weeks, returning_weeks, censored_as_demand: As
            `build_demand_features`.
        articles, merchants: Validated article and merchant metadata, prepared once for every
            shard (or None).
        whole_window: One shard holds the whole window (no range read, no empty columns kept).
        row_group_rows: Rows per row group of a part (None: one row group per shard).
        write_part: `write_part(number, tables)` writes shard `number`'s part of the partition
            from its tables and returns what it wrote (`storage.PartWriter.write`; picklable).
        write_in_task: The task writes its part itself (on Dask workers: no row travels to the
            run's process). Otherwise it returns a call that writes the part, which the run's
            thread makes as the tasks' threads build the next shards, as the single file was
            written before parts: the parquet encoding releases the GIL, while the tasks' pandas
            work mostly holds it.
    """

    read_history: Callable[..., pd.DataFrame]
    origin: dt.date
    history_weeks: int
    active_weeks: int
    returning_weeks: int
    censored_as_demand: bool
    articles: StaticTable | None
    merchants: StaticTable | None
    whole_window: bool
    row_group_rows: int | None
    write_part: Callable[[int, Iterable[pa.Table]], object]
    write_in_task: bool


def build_feature_shard(
    job: FeatureShardJob, shard: tuple[int, ArticleRange]
) -> tuple[object, WindowSummary] | None:
    """Builds shard `number`'s article range and returns its part and the shard's summary
    (None: no rows, no part).

    The part is written (`write_in_task`), or a call that writes it: the part's tables are made
    one at a time as the writer takes them (one table beside the frame in memory).
    """
    number, bounds = shard
    history = job.read_history(ranges=None if job.whole_window else {"article_id": bounds})
    if not_used := [c for c in NOT_FEATURE_INPUTS if c in history]:
        history = history.drop(columns=not_used)
    if history.empty:
        return None
    frame = build_demand_features(
        history,
        job.origin,
        job.history_weeks,
        job.active_weeks,
        articles=job.articles,
        merchants=job.merchants,
        censored_as_demand=job.censored_as_demand,
        keep_empty_columns=not job.whole_window,
        returning_weeks=job.returning_weeks,
    )
    del history
    skus = frame["sku"].to_numpy()
    if len(skus) and skus[-1] >= SHARD_SKUS:
        raise ValueError(f"A shard of more than {SHARD_SKUS:,} SKUs: make the shards smaller.")
    frame["sku"] = skus.astype("int64") + number * SHARD_SKUS
    summary = WindowSummary.of(frame, job.articles, job.merchants)
    tables = sku_aligned_tables(frame, job.row_group_rows)
    if job.write_in_task:
        return job.write_part(number, tables), summary
    return functools.partial(job.write_part, number, tables), summary


def feature_inputs(columns: Iterable[str]) -> list[str]:
    """The history columns the features use, of those given (read nothing else)."""
    return [c for c in columns if c not in NOT_FEATURE_INPUTS]


@dataclass
class WindowSummary:
    """What the metadata and the forecast step need to know about the frame, shard by shard."""

    skus: int = 0
    active_skus: int = 0
    returning_skus: int = 0
    unobserved: int = 0
    observed: int = 0
    zero: int = 0
    weeks: int = 0
    without_article: int = 0
    without_merchant: int = 0
    first_week: pd.Timestamp = pd.Timestamp.max
    categories: dict[str, list[str]] = field(default_factory=dict)
    head: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def of(
        cls, frame: pd.DataFrame, articles: StaticTable | None, merchants: StaticTable | None
    ) -> WindowSummary:
        firsts = frame.drop_duplicates("sku")
        trained = frame["weight"].to_numpy() > 0
        return cls(
            skus=len(firsts),
            active_skus=int(firsts["active"].sum()),
            returning_skus=frame.attrs.get(RETURNING_SKUS, 0),
            unobserved=int((~frame["observed"]).sum()),
            observed=int(trained.sum()),
            zero=int((frame["demand"].to_numpy()[trained] <= 0).sum()),
            weeks=int(frame["week"].nunique()),
            without_article=_skus_without(firsts, articles, "article_id"),
            without_merchant=_skus_without(firsts, merchants, "merchant_id"),
            first_week=frame["week"].min(),
            categories={
                column: frame[column].cat.categories.astype(str).tolist()
                for column in static_columns(frame)
                if isinstance(frame[column].dtype, pd.CategoricalDtype)
            },
            head=frame.head(HEAD_ROWS).copy(),  # a copy: a view would keep the shard alive
        )

    def merge(self, other: WindowSummary) -> None:
        """Adds the summary of the next shard (whose SKUs follow this one's)."""
        for name in ("skus", "active_skus", "returning_skus", "unobserved", "observed", "zero"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.without_article += other.without_article
        self.without_merchant += other.without_merchant
        # Categories come from the whole metadata table: every shard has the same ones.
        self.categories.update(other.categories)
        self.first_week = min(self.first_week, other.first_week)
        self.weeks = max(self.weeks, other.weeks)
        if self.head.empty:
            self.head = other.head

    def footer(self) -> dict[str, str]:
        """Totals the forecast step needs before it reads a row (`core.compute.WindowStats`)."""
        stats = WindowStats(
            observed_rows=self.observed,
            zero_share=self.zero / max(self.observed, 1),
            skus=self.skus,
            active_skus=self.active_skus,
            categories=self.categories,
        )
        return {FOOTER_KEY: stats.to_json()}


def sku_aligned_tables(frame: pd.DataFrame, rows: int | None) -> Iterator[pa.Table]:
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


def _skus_without(firsts: pd.DataFrame, metadata: StaticTable | None, key: str) -> int:
    """SKUs whose `key` has no row in the metadata (the contract allows it: empty features)."""
    keys = firsts[key]
    if metadata is None:
        return len(keys)
    if isinstance(keys.dtype, pd.CategoricalDtype):
        # Look up each distinct key once (a shard has ~30k SKUs but far fewer articles).
        found = metadata.known(keys.cat.categories.astype(str))
        codes = keys.cat.codes.to_numpy()
        return int((~found[codes[codes >= 0]]).sum() + (codes < 0).sum())
    return int((~metadata.known(pd.Index(keys.astype(str)))).sum())
