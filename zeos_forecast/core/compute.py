"""Where the forecast of one origin is computed: engine settings, shard executors, window totals.

`auto` picks `memory` when the window's rows fit the memory budget, else `sharded`; `dask` is
asked for explicitly (see `core.engine` for what each engine does). An executor runs shard tasks
in this thread, on threads of this process or on a Dask cluster's workers.

Nothing here imports the model libraries (LightGBM, mlforecast): the Dagster layer loads its
definitions, settings and executors without them (every webserver, daemon and run process
imports the code location), and a `demand_features` run never needs them.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .progress import Report

__all__ = [
    "ENGINES",
    "FOOTER_KEY",
    "DaskExecutor",
    "Engine",
    "EngineSettings",
    "SerialExecutor",
    "ShardedInput",
    "ThreadExecutor",
    "WindowStats",
    "open_engine",
    "physical_memory_bytes",
    "shard_executor",
    "usable_cores",
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
        fits = self.budget_bytes // (WORKER_BASE_BYTES + MIN_SHARD_ROWS * SHARD_BYTES_PER_ROW)
        return max(1, min(usable_cores(), fits))

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


@dataclass(frozen=True)
class ShardedInput:
    """The feature frame of one origin as SKU-aligned row groups (of its parts, in order).

    Attributes:
        read: `read(groups, columns, every, where)` returns those row groups as one frame
            (columns None: all; `every=("sku", k)`: only SKUs numbered by multiples of k;
            `where="active"`: only rows whose boolean column `active` is true). Picklable, so
            that Dask workers read their shards themselves.
        groups: Row-group count of the partition (numbered on across its parts).
        rows: Total rows (from the manifest, or the file's footer).
        stats: The totals the features step recorded with it (None: scanned here).
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
    """What pass 1 must know before it starts: recorded in the features' manifest.

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


@dataclass(frozen=True)
class Engine:
    """The engine a window was given, and the executor of its shard tasks.

    Attributes:
        settings: The settings with `auto` resolved (`settings.engine` is the engine's name).
        executor: Runs shard tasks: in this thread (`memory`), on threads (`sharded`) or on
            Dask workers (`dask`).
    """

    settings: EngineSettings
    executor: SerialExecutor | ThreadExecutor | DaskExecutor

    @property
    def name(self) -> str:
        return self.settings.engine


@contextlib.contextmanager
def open_engine(
    settings: EngineSettings, rows: int, report: Report | None = None
) -> Iterator[Engine]:
    """The engine for a window of `rows` rows (`auto` resolved), its executor open while the
    block runs (a Dask `LocalCluster` is shut down when it ends)."""
    resolved = settings.resolve(rows)
    with shard_executor(resolved.engine, resolved, report) as executor:
        yield Engine(resolved, executor)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1
