"""The weekly pipeline's two compute services, usable without Dagster: `build_features` and
`forecast` of one origin week on a lake.

Each reads its input from the lake, picks its engine (memory, sharded or Dask) behind one
interface (`compute.open_engine`), writes its partition atomically and returns what it did; the
Dagster assets only turn that into metadata. Errors are typed: `OriginNotValidatedError`,
`HistoryTooShortError` and `LandingDataError` say what to fix, and a retry cannot help them.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ..storage import (
    DEMAND_FEATURES,
    DEMAND_FORECAST,
    LANDING_ARTICLES,
    LANDING_MERCHANTS,
    ORIGIN_KEY,
    ROW_GROUP_ROWS,
    SALES_HISTORY,
    WEEK_KEY,
)
from .compute import FOOTER_KEY, EngineSettings, ShardedInput, WindowStats, open_engine
from .contract import KEY_COLUMNS, validate_metadata, validate_plan_drop
from .feature_shards import (
    FeatureShardJob,
    WindowSummary,
    build_feature_shard,
    feature_inputs,
)
from .features import StaticTable
from .history import require_history
from .plots import SkuChoice, SkuPicker
from .progress import Progress, Report

if TYPE_CHECKING:
    from ..storage import Lake
    from .model import ForecastResult
    from .settings import ForecastSettings

__all__ = [
    "FeatureWindow",
    "FeaturesBuilt",
    "ForecastWritten",
    "OriginNotValidatedError",
    "build_features",
    "forecast",
    "horizon_plans",
]


class OriginNotValidatedError(ValueError):
    """The origin week has no validated sales history: validate its drop first."""


@dataclass(frozen=True)
class FeatureWindow:
    """Which history the features of one origin cover (`ForecastSettings`' window settings).

    Attributes:
        history_weeks: Weeks of the window, ending at the origin.
        min_history_weeks: Fewest weeks with sales rows a window may have.
        active_weeks: A SKU with sales in these last weeks is forecast.
        returning_weeks: So is a SKU that sold in these weeks after the origin's week a year
            earlier (a seasonal article coming back).
        censored_as_demand: Take stockout-week sales as demand (comparison backtests only).
    """

    history_weeks: int
    min_history_weeks: int
    active_weeks: int
    returning_weeks: int = 0
    censored_as_demand: bool = False


@dataclass(frozen=True)
class FeaturesBuilt:
    """What `build_features` wrote: the file, its rows and a summary of the window."""

    path: str
    rows: int
    summary: WindowSummary
    first_week: dt.date
    weeks_with_sales: int
    engine: str
    shards: int
    seconds: float


@dataclass(frozen=True)
class ForecastWritten:
    """What `forecast` wrote: the file, the model's result, and the SKUs to draw."""

    path: str
    result: ForecastResult
    engine: str
    seconds: dict[str, float]
    plan_weeks: list[dt.date]
    chosen: list[SkuChoice] = field(default_factory=list)


def build_features(
    lake: Lake,
    origin: dt.date,
    window: FeatureWindow,
    engine: EngineSettings | None = None,
    report: Report | None = None,
) -> FeaturesBuilt:
    """Writes the feature frame of the window ending at `origin` (`demand_features`).

    Reads the window's `sales_history` straight from the parquet dataset (a week filter), builds
    every SKU's weekly history with article and merchant metadata as static features, in one
    piece or in shards of articles (the engine's shard size). Each shard is its own part of
    `demand_features/forecast_week=<origin>/` (sorted by SKU, every row group holding whole
    SKUs), written by the Dask worker that built it or, in this process, by this thread; the
    parts are published together by the partition's manifest (`Lake.publish_parts`).

    Raises:
        OriginNotValidatedError: `sales_history` has no partition for `origin`.
        HistoryTooShortError: fewer than `min_history_weeks` weeks of the window have sales.
        LandingDataError: the article or merchant metadata breaks the contract.
        ValueError: the frame cannot be written (its message says why).
    """
    first = origin - dt.timedelta(weeks=window.history_weeks - 1)
    weeks = lake.partitions(SALES_HISTORY, WEEK_KEY)
    if origin not in weeks:
        raise OriginNotValidatedError(
            f"sales_history has no partition for the origin week {origin}: "
            f"materialize sales_history for {origin} first."
        )
    started = time.perf_counter()
    rows_per_week = {
        w: lake.partition_rows(SALES_HISTORY, WEEK_KEY, w) for w in weeks if first <= w <= origin
    }
    weeks_with_sales = [w for w, rows in rows_per_week.items() if rows > 0]
    require_history(weeks_with_sales, origin, window.history_weeks, window.min_history_weeks)
    history_rows = sum(rows_per_week.values())
    with open_engine(engine or EngineSettings(), history_rows, report) as running:
        bounds = _article_bounds(
            lake, origin, math.ceil(history_rows / running.settings.shard_rows)
        )
        if report:
            report(
                f"{history_rows:,} sales_history rows in {first} .. {origin}: engine "
                f"{running.name}, {len(bounds)} shard(s) of articles."
            )
        history = lake.open_window(SALES_HISTORY, WEEK_KEY, first, origin)  # once, not per shard
        read_history = functools.partial(
            lake.read_window,
            SALES_HISTORY,
            WEEK_KEY,
            first,
            origin,
            columns=feature_inputs(history.schema.names),
            categorical=KEY_COLUMNS,
            dates_as_datetime=True,
            window=history,
        )
        articles, merchants = _metadata(lake)
        writer = lake.part_writer(DEMAND_FEATURES, ORIGIN_KEY, origin)  # each shard its part
        job = FeatureShardJob(
            read_history=read_history,
            origin=origin,
            history_weeks=window.history_weeks,
            active_weeks=window.active_weeks,
            returning_weeks=window.returning_weeks,
            censored_as_demand=window.censored_as_demand,
            articles=StaticTable.prepare(articles, "article_id"),
            merchants=StaticTable.prepare(merchants, "merchant_id"),
            whole_window=len(bounds) == 1,
            row_group_rows=ROW_GROUP_ROWS if running.name == "memory" else None,
            write_part=writer.write,
            write_in_task=running.name == "dask",
        )
        summary = WindowSummary()
        progress = Progress("building features", len(bounds), "shards", report)
        parts = []
        shards = list(enumerate(bounds))
        for built in running.executor.map(build_feature_shard, (job,), shards):
            if built is not None:
                part, shard_summary = built
                parts.append(part if job.write_in_task else part())  # (else: written here)
                summary.merge(shard_summary)  # shards come in order: SKUs follow on
            progress.advance()
        path = lake.publish_parts(
            DEMAND_FEATURES, ORIGIN_KEY, origin, writer, parts, footer=summary.footer()
        )
        rows = sum(part.rows for part in parts)
    return FeaturesBuilt(
        path=path,
        rows=rows,
        summary=summary,
        first_week=summary.first_week.date(),
        weeks_with_sales=len(weeks_with_sales),
        engine=running.name,
        shards=len(bounds),
        seconds=time.perf_counter() - started,
    )


def forecast(
    lake: Lake,
    origin: dt.date,
    settings: ForecastSettings,
    run_id: str,
    engine: EngineSettings | None = None,
    report: Report | None = None,
) -> ForecastWritten:
    """Trains on the features of `origin` and scores every active SKU, in one step.

    In memory the whole frame is read, trained on and scored; `sharded` and `dask` train on a
    bounded sample of the frame's SKU shards and score shard by shard, streaming the forecast
    into the file. Writes `demand_forecast/forecast_week=<origin>/part-0.parquet`, each row
    carrying `run_id`. Over the horizon, prices and promotions come from the validated plans
    where they exist (`horizon_plans`).

    Raises:
        LandingDataError: a plan of the horizon breaks the contract.
        ValueError: nothing to forecast (no active SKU).
    """
    # The model libraries load with the step that uses them, not with the code location (which
    # every webserver, daemon and run process imports): ~4 s of imports on 2 cores.
    from .engine import train_and_score_sharded
    from .model import train_and_score

    started = time.perf_counter()
    opened = lake.row_groups(DEMAND_FEATURES, ORIGIN_KEY, origin)  # one version throughout
    rows = opened.rows
    plans, plan_weeks = horizon_plans(lake, origin, settings.horizon)
    picker = SkuPicker(seed=settings.seed)
    with open_engine(engine or EngineSettings(), rows, report) as running:
        if report:
            report(f"Training on {rows:,} feature rows with engine {running.name}.")
        if running.name == "memory":
            features = lake.read_partition(DEMAND_FEATURES, ORIGIN_KEY, origin)
            read_seconds = time.perf_counter() - started
            result = train_and_score(features, origin, settings, report=report, plans=plans)
            del features
            picker.add(result.table)
            started = time.perf_counter()
            path = lake.write_partition(
                DEMAND_FORECAST, ORIGIN_KEY, origin, with_run_id(result.table, run_id)
            )
            writing = time.perf_counter() - started
            seconds = {"read": read_seconds, **result.seconds, "write": writing}
        else:
            footer = opened.footer
            source = ShardedInput(
                read=opened.read,
                groups=opened.groups,
                rows=rows,
                stats=WindowStats.from_json(footer[FOOTER_KEY]) if FOOTER_KEY in footer else None,
            )
            written: dict[str, str] = {}

            def sink(tables: Iterator[pd.DataFrame]) -> None:
                batches = (with_run_id(_seen(t, picker), run_id) for t in tables)
                written["path"], _ = lake.write_partition_batches(
                    DEMAND_FORECAST, ORIGIN_KEY, origin, batches
                )

            result = train_and_score_sharded(
                source,
                origin,
                settings,
                sink,
                running.settings,
                report,
                plans,
                running.executor,
            )
            path = written["path"]
            seconds = result.seconds
    return ForecastWritten(
        path=path,
        result=result,
        engine=running.name,
        seconds=seconds,
        plan_weeks=plan_weeks,
        chosen=picker.chosen(),
    )


def horizon_plans(
    lake: Lake, origin: dt.date, horizon: int
) -> tuple[pd.DataFrame | None, list[dt.date]]:
    """The validated plans for the horizon's weeks that have one (None when there are none).

    Raises:
        LandingDataError: a plan breaks the contract.
    """
    horizon_weeks = {origin + dt.timedelta(weeks=h) for h in range(1, horizon + 1)}
    weeks = [week for week in lake.plan_weeks() if week in horizon_weeks]
    frames = []
    for week in weeks:
        files = lake.read_plan_drop(week)
        frames.append(validate_plan_drop([(f.path, f.frame) for f in files], week))
    return (pd.concat(frames, ignore_index=True) if frames else None), weeks


def with_run_id(frame: pd.DataFrame, run_id: str) -> pa.Table:
    """The forecast rows as Arrow, with the run that wrote them (repeated in Arrow, not pandas)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), len(table)))


def _seen(table: pd.DataFrame, picker: SkuPicker) -> pd.DataFrame:
    picker.add(table)
    return table


def _article_bounds(
    lake: Lake, origin: dt.date, shards: int
) -> list[tuple[str | None, str | None]]:
    """Half-open article_id ranges, about equally many SKUs of the origin week in each.

    A SKU's rows all fall in one range (it is keyed by its article), whichever weeks it sold in;
    the ranges together cover every possible key, so no SKU of the window is left out.
    """
    if shards <= 1:
        return [(None, None)]
    keys = lake.read_window(SALES_HISTORY, WEEK_KEY, origin, origin, columns=["article_id"])
    articles = np.sort(keys["article_id"].astype(str).to_numpy())
    cuts = np.unique(articles[np.linspace(0, len(articles), shards + 1)[1:-1].astype(int)])
    edges = [None, *cuts.tolist(), None]
    return list(itertools.pairwise(edges))


def _metadata(lake: Lake) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The validated article and merchant metadata (None where there is none)."""
    articles = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_ARTICLES)], "article_id"
    )
    merchants = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_MERCHANTS)], "merchant_id"
    )
    return articles, merchants
