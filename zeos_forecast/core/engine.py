"""Engines: how the forecast of one origin is computed when its window is larger than memory.

Every engine gives the same table from the same models (a global point model and one quantile
model per level, through mlforecast); they differ in what is in memory at once.

- `memory`: the whole feature frame, every observed row trained on (up to `train_rows`).
- `sharded`: the frame in SKU shards (row groups of the `demand_features` file, each holding
  whole SKUs). Pass 1 computes mlforecast's features shard by shard and keeps a uniform sample of
  `train_rows` observed rows (plus every row of a few calibration SKUs); the models are fitted
  once on the sample; pass 2 scores every active SKU shard by shard and streams the forecast out.
  Memory is bounded by one shard plus the sample, whatever the number of SKUs.
  On a machine with several cores the shards are worked on by one thread per core (reading and
  writing parquet and most array work release the GIL), a bounded window ahead of the writer.
- `dask`: the sharded engine with its shards (feature shards, then both passes) spread over a
  Dask cluster's workers (a `LocalCluster` on this machine when no scheduler address is given).

`auto` picks `memory` when the window's rows fit the memory budget, else `sharded`
(`core.compute`: the settings and executors, without the model libraries).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .compute import EngineSettings, SerialExecutor, ShardedInput, WindowStats
from .contract import KEY_COLUMNS
from .features import dynamic_columns, static_columns
from .model import (
    PLANNED_SHARE,
    POINT,
    TOP_FEATURES,
    ForecastResult,
    _assemble,
    _calibration_offsets,
    _lgbm_params,
    compile_for_scoring,
    fit_models,
    future_inputs,
    make_forecaster,
    modelled_inputs,
    score,
    training_sample,
    young_skus_quietly,
)
from .progress import Progress, Report
from .settings import ForecastSettings

__all__ = ["concat_frames", "sampling_plan", "train_and_score_sharded"]

# The calibration fit learns from the SKUs of this share of `train_rows` rows.
CALIBRATION_ROWS_SHARE = 0.25
# Share of a sampled SKU's observed rows that the models train on (see `sampling_plan`).
ROW_SHARE = 0.25
TRAINING_COLUMNS = ("sku", "week", "demand", "weight")
MLFORECAST_NAMES = {"sku": "unique_id", "week": "ds", "demand": "y"}


def concat_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """`pd.concat` that keeps categorical columns categorical when their categories differ."""
    if len(frames) == 1:
        return frames[0]
    first = frames[0]
    columns = {}
    for column in first.columns:
        parts = [f[column] for f in frames]
        if isinstance(first[column].dtype, pd.CategoricalDtype):
            columns[column] = pd.Series(union_categoricals(parts, ignore_order=True))
        else:
            columns[column] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(columns)


def _conform_categories(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """One coding of every static categorical across shards, as the models must see it."""
    for column, values in categories.items():
        if column in frame and isinstance(frame[column].dtype, pd.CategoricalDtype):
            current = frame[column].cat.categories
            if list(current.astype(str)) != values:
                frame[column] = frame[column].cat.set_categories(values)
    return frame


def _training_frame(batch: pd.DataFrame, dynamic: list[str], static: list[str]) -> pd.DataFrame:
    """mlforecast's long frame of the batch: one copy, which preprocessing may change freely."""
    columns = [*TRAINING_COLUMNS, *dynamic, *static]
    frame = batch[columns]
    frame.columns = [MLFORECAST_NAMES.get(c, c) for c in columns]  # no second copy (`rename`)
    return frame


def _scoring_history(batch: pd.DataFrame, dynamic: list[str], static: list[str]) -> pd.DataFrame:
    """mlforecast's long frame of the batch for `predict(new_df=...)`, sharing the batch's arrays.

    Predicting only reads it (its target transform works on a copy), so no copy is made: at 1M
    SKUs copying the columns cost about a tenth of a scoring shard's time.
    """
    columns = [*TRAINING_COLUMNS, *dynamic, *static]
    return pd.DataFrame({MLFORECAST_NAMES.get(c, c): batch[c] for c in columns}, copy=False)


def _up_to(batch: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """The rows up to `origin`; the frame itself when it has none later (no copy of a shard)."""
    weeks = batch["week"]
    if len(weeks) == 0 or weeks.max() <= origin:
        return batch
    return batch.loc[weeks <= origin]


def _scoring_columns(plan: _Plan) -> list[str]:
    """What scoring a shard reads: series, keys, flags and model inputs (not the raw sales)."""
    return [*TRAINING_COLUMNS, "active", *KEY_COLUMNS, *plan.dynamic, *plan.static]


def _sampling_columns(plan: _Plan) -> list[str]:
    """What pass 1 reads: model inputs and the flags calibration needs; keys only for plans.

    Every row group is decoded to keep a few SKUs of it, so each column left out counts (the
    keys and sales were a fifth of the decoding at 1M SKUs).
    """
    keys = list(KEY_COLUMNS) if plan.plans is not None else []
    flags = ["active", "observed", "availability"]
    return [*TRAINING_COLUMNS, *flags, *keys, *plan.dynamic, *plan.static]


@dataclass
class _Plan:
    """Everything both passes share: resolved settings, columns, sample share, origin."""

    settings: ForecastSettings
    origin: pd.Timestamp
    dynamic: list[str]
    static: list[str]
    categories: dict[str, list[str]]
    share: float | None
    sku_stride: int
    calibration_stride: int
    plans: pd.DataFrame | None
    task_threads: int | None = None


def sampling_plan(stats: WindowStats, rows: int, train_rows: int) -> tuple[int, float | None, int]:
    """Which SKUs pass 1 reads, which share of their rows it trains on, which SKUs calibrate.

    Up to `train_rows` observed rows, every SKU is read and every row trained on (as in memory).
    Beyond that, a systematic sample of SKUs (every k-th SKU number; SKUs are numbered in key
    order) is read, just enough that keeping a uniform `ROW_SHARE` of their observed rows gives
    `train_rows` rows: many SKUs, a few weeks each, and only 1/k of the features computed.
    The calibration fit takes every row of a further systematic sample of those SKUs, about
    `CALIBRATION_ROWS_SHARE * train_rows` rows.

    Returns:
        (SKU stride k, row share or None for "all rows", calibration SKU stride).
    """
    skus = max(stats.skus, 1)
    rows_per_sku = max(rows / skus, 1.0)
    if stats.observed_rows <= train_rows:
        sku_stride, share = 1, None
    else:
        sku_stride = max(1, int(stats.observed_rows * ROW_SHARE // train_rows))
        share = min(1.0, train_rows / (stats.observed_rows / sku_stride))
    calibration_skus = max(CALIBRATION_ROWS_SHARE * train_rows / rows_per_sku, 1.0)
    factor = max(1, int((skus / sku_stride) // calibration_skus))
    return sku_stride, share, sku_stride * factor


def _sample_shard(plan: _Plan, source: ShardedInput, task: tuple[int, list[int]]):
    """Pass 1 for one shard: mlforecast's features, the sampled rows, the calibration SKUs."""
    index, groups = task
    batch = source.read(groups, _sampling_columns(plan), ("sku", plan.sku_stride))
    batch = _conform_categories(_up_to(batch, plan.origin), plan.categories)
    settings = plan.settings
    if plan.task_threads:  # mlforecast's feature threads, as many as the task may use
        settings = dataclasses.replace(settings, threads=plan.task_threads)
    forecaster = make_forecaster(settings)
    x, y = forecaster.preprocess(
        _training_frame(batch, plan.dynamic, plan.static),
        static_features=plan.static,
        weight_col="weight",
        dropna=False,
        return_X_y=True,
        validate_data=False,
    )
    x, y = training_sample(x, y, plan.settings.train_rows, plan.settings.seed + index, plan.share)
    calibration = batch.loc[batch["sku"].to_numpy() % plan.calibration_stride == 0].copy()
    return x, y, calibration, batch["sku"].nunique()


def _score_shard(plan: _Plan, forecaster, offsets, source: ShardedInput, groups: list[int]):
    """Pass 2 for one shard: every active SKU scored, assembled into forecast rows."""
    if plan.task_threads:
        # This task's own view of the models (tasks may share them, on threads): predict with
        # the task's threads, not the run's (OpenMP threads of several tasks on the same cores
        # slow each other down), and `score` swaps the models of this copy only.
        forecaster = copy.copy(forecaster)
        forecaster.ts = copy.copy(forecaster.ts)
        forecaster.ts.num_threads = plan.task_threads
        forecaster.models_ = {
            name: model.with_threads(plan.task_threads)
            for name, model in forecaster.models_.items()
        }
    # Only the SKUs to forecast: the others' rows are never read into pandas.
    batch = source.read(groups, _scoring_columns(plan), where="active")
    batch = _conform_categories(_up_to(batch, plan.origin), plan.categories)
    ids = np.sort(batch["sku"].unique())
    if len(ids) == 0:
        return None, {}, 0
    future = future_inputs(
        batch, plan.origin.date(), plan.settings.horizon, plan.dynamic, plan.plans
    )
    scores = score(
        forecaster,
        ids,
        future.frame if plan.dynamic else None,
        plan.origin,
        plan.settings,
        plan.settings.horizon,
        history=_scoring_history(batch, plan.dynamic, plan.static),
    )
    table = _assemble(scores, batch, plan.origin, plan.settings, offsets)
    return table, future.planned_share, len(ids)


def train_and_score_sharded(
    source: ShardedInput,
    origin: dt.date,
    settings: ForecastSettings,
    sink: Callable[[Iterator[pd.DataFrame]], None],
    engine: EngineSettings | None = None,
    report: Report | None = None,
    plans: pd.DataFrame | None = None,
    executor=None,
) -> ForecastResult:
    """Trains on a bounded sample of the shards and scores every active SKU, shard by shard.

    Args:
        source: The `demand_features` file of `origin` as SKU-aligned row groups.
        origin: The forecast origin week.
        settings: As for `train_and_score`; `train_rows` bounds the training sample.
        sink: Receives the forecast as an iterator of frames (one per shard, in SKU order) and
            writes them; the iterator does pass 2 while the sink consumes it.
        engine: Memory budget (shard size).
        report: Progress lines.
        plans: Known future inputs, as for `train_and_score`.
        executor: Runs shard tasks (`SerialExecutor`, the default, or `DaskExecutor`).

    Returns:
        A `ForecastResult` whose `table` holds the first rows only (a preview); `rows` and
        `forecast_sum` describe the whole forecast.
    """
    engine = engine or EngineSettings()
    executor = executor or SerialExecutor()
    seconds: dict[str, float] = {}
    origin_ts = pd.Timestamp(origin)
    started = time.perf_counter()
    head = source.read([0], None)
    dynamic, static = dynamic_columns(head), static_columns(head)
    del head
    stats = source.stats or WindowStats.scan(source, static)
    if stats.active_skus == 0:
        raise ValueError(
            f"No active SKU at {origin}: no SKU has sales rows in the last "
            f"{settings.active_weeks} weeks of the window, nor sold in the "
            f"{settings.returning_weeks} weeks after the origin's week a year earlier."
        )
    settings = settings.resolved(stats.zero_share)
    dynamic, left_out = modelled_inputs(
        dynamic, plans, origin_ts, settings.horizon, stats.active_skus, settings
    )
    sku_stride, share, calibration_stride = sampling_plan(stats, source.rows, settings.train_rows)
    plan = _Plan(
        settings=settings,
        origin=origin_ts,
        dynamic=dynamic,
        static=static,
        categories=stats.categories,
        share=share,
        sku_stride=sku_stride,
        calibration_stride=calibration_stride,
        plans=plans,
        task_threads=executor.threads_per_task,
    )
    seconds["stats"] = time.perf_counter() - started

    started = time.perf_counter()
    shards = source.shards(engine.shard_rows)
    progress = Progress("sampling training rows", len(shards), "shards", report)
    xs, ys, calibration_frames = [], [], []
    tasks = list(enumerate(shards))
    for x, y, calibration, _ in executor.map(_sample_shard, (plan, source), tasks):
        xs.append(x)
        ys.append(y)
        calibration_frames.append(calibration)
        progress.advance()
    x = pd.concat(xs, ignore_index=True)
    y = np.concatenate(ys)
    del xs, ys
    seconds["sample"] = time.perf_counter() - started

    fits = 2 if settings.calibration_weeks else 1
    per_fit = settings.trees_per_fit
    trees = Progress("fitting LightGBM", per_fit * fits, "trees", report)
    sample = concat_frames(calibration_frames)
    del calibration_frames
    offsets = None
    if settings.calibration_weeks:
        started = time.perf_counter()
        sample_ids = np.sort(sample.loc[sample["active"], "sku"].unique())
        if len(sample_ids):
            future = future_inputs(sample, origin, settings.horizon, dynamic, plans)
            planned = [c for c, s in future.planned_share.items() if s >= PLANNED_SHARE]
            offsets = _calibration_offsets(
                sample, origin_ts, sample_ids, dynamic, static, settings, trees, planned
            )
        if offsets is None:
            trees.total -= per_fit
        seconds["calibrate"] = time.perf_counter() - started

    started = time.perf_counter()
    forecaster = make_forecaster(settings)
    # The forecaster's own series state (feature layout, weight column) comes from the small
    # calibration sample; the models are fitted on the rows sampled from every shard.
    forecaster.preprocess(
        _training_frame(sample, dynamic, static),
        static_features=static,
        weight_col="weight",
        dropna=False,
        validate_data=False,
    )
    del sample
    fit_models(forecaster, x, y, trees, settings)
    train_rows = len(x)
    del x, y
    seconds["fit"] = time.perf_counter() - started
    predictions = stats.active_skus * settings.horizon
    compiling = compile_for_scoring(forecaster, predictions, settings, report)
    if compiling is not None:
        seconds["compile"] = compiling

    started = time.perf_counter()
    totals = {"rows": 0, "sum": 0.0, "skus": 0}
    planned_rows: dict[str, float] = {}
    preview: list[pd.DataFrame] = []
    scoring = Progress("scoring SKUs", stats.active_skus, "SKUs", report)

    def scored() -> Iterator[pd.DataFrame]:
        shared = (plan, forecaster, offsets, source)
        for table, shard_planned, n_ids in executor.map(_score_shard, shared, shards):
            if table is None:
                continue
            totals["rows"] += len(table)
            totals["sum"] += float(table[POINT].sum())
            totals["skus"] += n_ids
            for column, value in shard_planned.items():
                planned_rows[column] = planned_rows.get(column, 0.0) + value * len(table)
            if not preview:
                preview.append(table.head(1_000))
            scoring.advance(n_ids)
            yield table

    with young_skus_quietly():  # once around every thread's `score` (its docstring)
        sink(scored())
    seconds["predict"] = time.perf_counter() - started
    planned_share = {c: round(v / max(totals["rows"], 1), 4) for c, v in planned_rows.items()}
    booster = forecaster.models_[POINT].booster_
    importance = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    importance = (importance / max(importance.sum(), 1e-12)).sort_values(ascending=False)
    return ForecastResult(
        table=preview[0] if preview else pd.DataFrame(),
        train_rows=train_rows,
        skus_trained=stats.skus,
        skus_scored=totals["skus"],
        seconds=seconds,
        feature_importance=importance.head(TOP_FEATURES),
        lgbm_params=_lgbm_params(settings),
        planned_share=planned_share,
        calibration=offsets,
        zero_share=stats.zero_share,
        target_transform=settings.target_transform,
        point_objective=settings.point_objective,
        left_out=left_out,
        rows=totals["rows"],
        forecast_sum=totals["sum"],
    )
