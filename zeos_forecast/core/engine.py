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

`auto` picks `memory` when the window's rows fit the memory budget, else `sharded`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import copy
import dataclasses
import datetime as dt
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .contract import KEY_COLUMNS
from .features import dynamic_columns, static_columns
from .model import (
    POINT,
    TOP_FEATURES,
    ForecastResult,
    _assemble,
    _calibration_offsets,
    _lgbm_params,
    fit_models,
    future_inputs,
    make_forecaster,
    score,
    training_sample,
)
from .progress import Progress, Report
from .settings import ForecastSettings

__all__ = [
    "ENGINES",
    "FOOTER_KEY",
    "DaskExecutor",
    "EngineSettings",
    "SerialExecutor",
    "ShardedInput",
    "WindowStats",
    "physical_memory_bytes",
    "sampling_plan",
    "shard_executor",
    "train_and_score_sharded",
]
# Footer key of the features file's `WindowStats`.
FOOTER_KEY = "zeos.window_stats"

ENGINES = ("auto", "memory", "sharded", "dask")
# Peak bytes per feature row of the in-memory engine: the frame, mlforecast's feature matrix and
# LightGBM's copy (measured: README, benchmark: scale). `auto` stays in memory below the budget.
MEMORY_BYTES_PER_ROW = 1_000
# Peak bytes per row of one shard in flight (its frame, mlforecast's features, the scores).
SHARD_BYTES_PER_ROW = 700
# Without `max_memory_gb`, this share of the machine's memory is the budget.
DEFAULT_MEMORY_SHARE = 0.5
MIN_SHARD_ROWS, MAX_SHARD_ROWS = 200_000, 8_000_000
# The calibration fit learns from the SKUs of this share of `train_rows` rows.
CALIBRATION_ROWS_SHARE = 0.25
# Share of a sampled SKU's observed rows that the models train on (see `sampling_plan`).
ROW_SHARE = 0.25
TRAINING_COLUMNS = ("sku", "week", "demand", "weight")
MLFORECAST_NAMES = {"sku": "unique_id", "week": "ds", "demand": "y"}
# Shard tasks a Dask worker thread holds at once: one running, one queued behind it.
IN_FLIGHT_PER_WORKER = 2
# Resident memory of an idle local worker process with this package imported (~330 MB seen).
WORKER_BASE_BYTES = 400 * 2**20


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class EngineSettings:
    """Where and in what pieces the forecast is computed.

    Attributes:
        engine: `auto`, `memory`, `sharded` or `dask` (module docstring).
        max_memory_gb: Memory budget of a run; default half the machine's memory. Decides
            `auto` and the shard size.
        dask_address: Scheduler of an existing Dask cluster (`tcp://host:8786`); without it the
            `dask` engine starts a `LocalCluster` for the run.
        workers: Shards worked on at once on this machine: threads of the `sharded` engine,
            single-threaded worker processes of the `dask` engine's `LocalCluster`; default one
            per core, as many as the budget holds (`local_workers`).
        shard_rows_override: Rows per shard instead of the budget's (`shard_rows`).
    """

    engine: str = "auto"
    max_memory_gb: float | None = None
    dask_address: str | None = None
    workers: int | None = None
    shard_rows_override: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.max_memory_gb is not None and self.max_memory_gb <= 0:
            raise ValueError(f"max_memory_gb must be positive, got {self.max_memory_gb}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def budget_bytes(self) -> int:
        if self.max_memory_gb is not None:
            return int(self.max_memory_gb * 2**30)
        return int(physical_memory_bytes() * DEFAULT_MEMORY_SHARE)

    @property
    def local_workers(self) -> int:
        """Shards in the works at once on this machine (threads of `sharded`, processes of a
        local `dask`): one per core, as many as the budget holds (a worker process needs its
        imports and one shard), unless `workers` says otherwise."""
        if self.workers:
            return self.workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        fits = self.budget_bytes // (WORKER_BASE_BYTES + MIN_SHARD_ROWS * SHARD_BYTES_PER_ROW)
        return max(1, min(cores or 1, fits))

    def choose(self, rows: int) -> str:
        """The engine for a window of `rows` feature rows.

        `auto` keeps a window that fits the budget in memory; a larger one is sharded in the
        run's own process (`sharded`). `dask` (a `LocalCluster` of one single-threaded worker
        per core, or a cluster at `dask_address`) is asked for explicitly.
        """
        if self.engine != "auto":
            return self.engine
        if rows * MEMORY_BYTES_PER_ROW <= self.budget_bytes:
            return "memory"
        # Measured at 1M SKUs x 156 weeks on 2 cores: the features built on a 2-worker
        # LocalCluster took ~280 s against 184 s in the run's own process (shipping every
        # shard's table back to the writer costs more than the second core gives), so `dask`
        # is chosen explicitly until that is fixed.
        return "sharded"

    def resolve(self, rows: int) -> EngineSettings:
        """These settings with `auto` replaced by the engine a window of `rows` rows gets."""
        return dataclasses.replace(self, engine=self.choose(rows))

    @property
    def shard_rows(self) -> int:
        """Rows per shard: a quarter of the budget in flight, within sane bounds.

        A shard is in flight on every local worker (thread or process), so shards are that many
        times smaller: the same memory as one shard at a time. Measured at 1M SKUs on 2 cores,
        12 shards of 1/60 on 2 threads built in 35.9 s with 2.08 GiB peak RSS, 6 of 1/30 in
        29.0-33.0 s with 3.37-3.42 GiB, one thread 48.4-52.6 s with 2.10 GiB.
        """
        if self.shard_rows_override:
            return self.shard_rows_override
        local = self.engine == "sharded" or (self.engine == "dask" and not self.dask_address)
        in_flight = self.local_workers if local else 1
        rows = self.budget_bytes // 4 // SHARD_BYTES_PER_ROW // in_flight
        return int(min(max(rows, MIN_SHARD_ROWS), MAX_SHARD_ROWS))


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


@dataclass(frozen=True)
class ShardedInput:
    """The feature frame of one origin as SKU-aligned row groups of a parquet file.

    Attributes:
        read: `read(groups, columns, every)` returns those row groups as one frame (columns
            None: all; `every=("sku", k)`: only SKUs numbered by multiples of k). Picklable, so
            that Dask workers read their shards themselves.
        groups: Row-group count of the file.
        rows: Total rows (from the file's footer).
        stats: The totals the features step wrote into the footer (None: scanned here).
    """

    read: Callable[..., pd.DataFrame]
    groups: int
    rows: int
    stats: WindowStats | None = None

    def shards(self, target_rows: int) -> list[list[int]]:
        """Consecutive row groups, about `target_rows` rows per shard."""
        per_group = max(self.rows / max(self.groups, 1), 1)
        size = max(1, int(target_rows // per_group))
        return [list(range(i, min(i + size, self.groups))) for i in range(0, self.groups, size)]


@dataclass
class WindowStats:
    """What pass 1 must know before it starts: written into the features file's footer.

    Attributes:
        observed_rows: Rows with training weight > 0 (the ones a sample is drawn from).
        zero_share: Share of those without demand (decides the `auto` target).
        skus, active_skus: SKUs in the window, and those forecast.
        categories: Categories of each static categorical column, one coding for all shards.
    """

    observed_rows: int
    zero_share: float
    skus: int
    active_skus: int
    categories: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WindowStats:
        return cls(**json.loads(text))

    @classmethod
    def scan(cls, source: ShardedInput, static: list[str]) -> WindowStats:
        """The same totals from the frame itself (a file written without them), group by group."""
        observed = zeros = skus = active = 0
        uniques: dict[str, set] = {c: set() for c in static}
        for group in range(source.groups):
            frame = source.read([group], ["sku", "demand", "weight", "active", *static])
            seen = frame["weight"].to_numpy() > 0
            observed += int(seen.sum())
            zeros += int((frame["demand"].to_numpy()[seen] <= 0).sum())
            firsts = frame.drop_duplicates("sku")  # a SKU never spans row groups
            skus += len(firsts)
            active += int(firsts["active"].sum())
            for column in static:
                if isinstance(frame[column].dtype, pd.CategoricalDtype):
                    uniques[column].update(frame[column].cat.categories.astype(str))
        categories = {c: sorted(v) for c, v in uniques.items() if v}
        return cls(observed, zeros / max(observed, 1), skus, active, categories)


def _conform_categories(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """One coding of every static categorical across shards, as the models must see it."""
    for column, values in categories.items():
        if column in frame and isinstance(frame[column].dtype, pd.CategoricalDtype):
            current = frame[column].cat.categories
            if list(current.astype(str)) != values:
                frame[column] = frame[column].cat.set_categories(values)
    return frame


def _training_frame(
    batch: pd.DataFrame, dynamic: list[str], static: list[str], rows: np.ndarray | None = None
) -> pd.DataFrame:
    """mlforecast's long frame of the batch (its `rows`, a mask; None: all): one copy."""
    columns = [*TRAINING_COLUMNS, *dynamic, *static]
    frame = batch[columns] if rows is None else batch.loc[rows, columns]
    frame.columns = [MLFORECAST_NAMES.get(c, c) for c in columns]  # no second copy (`rename`)
    return frame


def _up_to(batch: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """The rows up to `origin`; the frame itself when it has none later (no copy of a shard)."""
    weeks = batch["week"]
    if len(weeks) == 0 or weeks.max() <= origin:
        return batch
    return batch.loc[weeks <= origin]


def _scoring_columns(plan: _Plan) -> list[str]:
    """What scoring a shard reads: series, keys, flags and model inputs (not the raw sales)."""
    return [*TRAINING_COLUMNS, "active", *KEY_COLUMNS, *plan.dynamic, *plan.static]


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
    batch = source.read(groups, None, ("sku", plan.sku_stride))
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
    batch = source.read(groups, _scoring_columns(plan))
    batch = _conform_categories(_up_to(batch, plan.origin), plan.categories)
    active = batch["active"].to_numpy()
    ids = np.sort(batch.loc[active, "sku"].unique())
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
        history=_training_frame(batch, plan.dynamic, plan.static, rows=active),
    )
    table = _assemble(scores, batch, plan.origin, plan.settings, offsets)
    return table, future.planned_share, len(ids)


class SerialExecutor:
    """Runs shard tasks one after another in this process.

    An executor's `map(function, shared, items)` yields `function(*shared, item)` for each item,
    in order; `DaskExecutor` runs the same calls on a cluster's workers. `threads_per_task` is
    what a task may use (None: the run's settings).
    """

    threads_per_task: int | None = None

    def map(self, function: Callable, shared: tuple, items: Sequence) -> Iterator:
        for item in items:
            yield function(*shared, item)


class ThreadExecutor:
    """Runs shard tasks on a few threads of this process, in order, a bounded window ahead.

    Reading parquet, writing it and most of the array work release the GIL, so on a machine
    with several cores the next shard is read and built while the caller (say the parquet
    writer) takes the previous one, with no copy of any table between processes. One task per
    thread is submitted ahead of the one being consumed: at most `threads + 1` shards in memory.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.threads_per_task = 1  # the tasks share the cores already

    def map(self, function: Callable, shared: tuple, items: Sequence) -> Iterator:
        pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="shard")
        pending = iter(items)
        futures: collections.deque = collections.deque()

        def submit(count: int) -> None:
            for item in itertools.islice(pending, count):
                futures.append(pool.submit(function, *shared, item))

        submit(self.threads)
        try:
            while futures:
                result = futures.popleft().result()
                submit(1)
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Runs shard tasks on a Dask cluster: the shared arguments are sent to every worker once.

    At most `IN_FLIGHT_PER_WORKER` tasks per worker thread are submitted ahead of the one being
    consumed, so finished shards never pile up in the workers' memory while the caller (say a
    parquet writer) is slower than they are.
    """

    def __init__(self, client) -> None:
        self.client = client
        self.threads_per_task = 1  # a worker with several threads runs as many tasks at once

    def map(self, function: Callable, shared: tuple, items: Sequence) -> Iterator:
        # hash=False: a value equal to one of the previous pass (released a moment ago) gets a
        # new key, not the old one the scheduler may still be forgetting.
        scattered = [self.client.scatter(value, broadcast=True, hash=False) for value in shared]
        ahead = IN_FLIGHT_PER_WORKER * max(sum(self.client.nthreads().values()), 1)
        pending = iter(items)
        futures: collections.deque = collections.deque()

        def submit(count: int) -> None:
            for item in itertools.islice(pending, count):
                futures.append(self.client.submit(function, *scattered, item, pure=False))

        submit(ahead)
        try:
            while futures:  # in order, while the workers go on with the next ones
                future = futures.popleft()
                result = future.result()
                future.release()
                submit(1)
                yield result
        finally:
            self.client.cancel(list(futures))


@contextlib.contextmanager
def dask_executor(engine: EngineSettings, report: Report | None = None) -> Iterator[DaskExecutor]:
    """A `DaskExecutor` on the cluster at `engine.dask_address`, or on a `LocalCluster`.

    The local cluster binds to 127.0.0.1, has `local_workers` single-threaded worker processes
    sharing the memory budget, and no dashboard; it is shut down when the block ends.
    """
    from dask.distributed import Client, LocalCluster

    if engine.dask_address:
        with Client(engine.dask_address, timeout=60) as client:
            if report:
                report(f"Dask cluster at {engine.dask_address}: {len(client.nthreads())} workers.")
            yield DaskExecutor(client)
        return
    with (
        LocalCluster(
            n_workers=engine.local_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=engine.budget_bytes // engine.local_workers,
        ) as cluster,
        Client(cluster) as client,
    ):
        if report:
            report(f"Started a Dask LocalCluster with {engine.local_workers} workers.")
        yield DaskExecutor(client)


@contextlib.contextmanager
def shard_executor(
    mode: str, engine: EngineSettings, report: Report | None = None
) -> Iterator[SerialExecutor | ThreadExecutor | DaskExecutor]:
    """The executor of an engine's shard tasks: Dask workers for `dask`; for `sharded`, one
    thread per local worker (`local_workers`: cores, as the budget allows); else this thread."""
    if mode == "dask":
        with dask_executor(engine, report) as executor:
            yield executor
    elif mode == "sharded" and engine.local_workers > 1:
        yield ThreadExecutor(engine.local_workers)
    else:
        yield SerialExecutor()


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
            f"{settings.active_weeks} weeks of the window."
        )
    settings = settings.resolved(stats.zero_share)
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
    n_models = 1 + len(settings.quantiles)
    trees = Progress("fitting LightGBM", settings.n_estimators * n_models * fits, "trees", report)
    sample = concat_frames(calibration_frames)
    del calibration_frames
    offsets = None
    if settings.calibration_weeks:
        started = time.perf_counter()
        sample_ids = np.sort(sample.loc[sample["active"], "sku"].unique())
        if len(sample_ids):
            future = future_inputs(sample, origin, settings.horizon, dynamic, plans)
            planned = [c for c, s in future.planned_share.items() if s >= 0.5]
            offsets = _calibration_offsets(
                sample, origin_ts, sample_ids, dynamic, static, settings, trees, planned
            )
        if offsets is None:
            trees.total -= settings.n_estimators * n_models
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
        rows=totals["rows"],
        forecast_sum=totals["sum"],
    )
