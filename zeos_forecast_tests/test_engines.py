"""The sharded and Dask engines: same forecast as in memory, bounded samples, through Dagster.

Core-level tests build one feature frame and compare engines on it; the Dagster-level tests run
the weekly assets with the `compute` resource asking for small shards, so that a handful of SKUs
already spans several shards, row groups and Dask tasks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from core_frames import panel_history
from hypothesis import given
from hypothesis import strategies as st
from weekly_graph import demand_features, demand_forecast, sales_history

from zeos_forecast.core.compute import (
    IN_FLIGHT_PER_WORKER,
    MEMORY_BYTES_PER_ROW,
    DaskExecutor,
    EngineSettings,
    ShardedInput,
    ThreadExecutor,
    WindowStats,
)
from zeos_forecast.core.engine import sampling_plan, train_and_score_sharded
from zeos_forecast.core.features import build_demand_features
from zeos_forecast.core.model import train_and_score
from zeos_forecast.core.services import FeatureWindow, build_features, forecast
from zeos_forecast.core.settings import ForecastSettings
from zeos_forecast.datasets.synthetic import generate_panel
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

ORIGIN = dt.date(2025, 6, 2)
KEYS = ["article_id", "merchant_id", "week", "horizon"]
VALUES = ["forecast", "q10", "q50", "q90"]
FAST = ForecastSettings(horizon=4, n_estimators=15, threads=1, calibration_weeks=0)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    panel = generate_panel(300, 60, ORIGIN, seed=3)
    return build_demand_features(
        panel_history(panel), ORIGIN, 60, 13, panel.articles, panel.merchants
    )


def sharded(features: pd.DataFrame, root: Path, groups: int) -> ShardedInput:
    """The frame written as `groups` SKU-aligned row groups, read back as the engine reads it."""
    lake = Lake(str(root))
    skus = np.array_split(features["sku"].unique(), groups)
    tables = (
        pa.Table.from_pandas(features.loc[features["sku"].isin(part)], preserve_index=False)
        for part in skus
    )
    lake.write_partition_batches("demand_features", "forecast_week", ORIGIN, tables)
    count, rows = lake.partition_layout("demand_features", "forecast_week", ORIGIN)
    return ShardedInput(
        lake.row_group_reader("demand_features", "forecast_week", ORIGIN), count, rows
    )


def run_sharded(source: ShardedInput, settings: ForecastSettings, shard_rows: int, executor=None):
    written: list[pd.DataFrame] = []
    result = train_and_score_sharded(
        source,
        ORIGIN,
        settings,
        lambda tables: written.extend(tables),
        EngineSettings(shard_rows_override=shard_rows),
        executor=executor,
    )
    return result, pd.concat(written, ignore_index=True)


# ---- the sampling plan ----


@given(
    observed=st.integers(1_000, 10**10),
    skus=st.integers(1, 10**7),
    train_rows=st.integers(1_000, 10**7),
)
def test_the_sample_trains_on_about_train_rows_rows_whatever_the_window(observed, skus, train_rows):
    rows = observed + observed // 5
    stats = WindowStats(observed_rows=observed, zero_share=0.1, skus=skus, active_skus=skus)

    stride, share, calibration_stride = sampling_plan(stats, rows, train_rows)

    assert stride >= 1 and calibration_stride % stride == 0
    if observed <= train_rows:
        assert (stride, share) == (1, None)  # everything, as in memory
    else:
        assert 0 < share <= 1
        expected_rows = observed / stride * share
        assert expected_rows == pytest.approx(min(train_rows, observed / stride), rel=1e-9)


# ---- engines on one feature frame ----


def test_the_sharded_engine_gives_the_memory_forecast_when_it_trains_on_every_row(
    features, tmp_path
):
    memory = train_and_score(features, ORIGIN, FAST).table
    source = sharded(features, tmp_path / "lake", groups=5)

    result, table = run_sharded(source, FAST, shard_rows=len(features) // 3)

    assert result.train_rows == len(features)
    assert result.rows == len(table) == len(memory)
    pd.testing.assert_frame_equal(
        table.sort_values(KEYS, ignore_index=True)[KEYS + VALUES],
        memory.sort_values(KEYS, ignore_index=True)[KEYS + VALUES],
        rtol=1e-5,
    )


def test_both_engines_take_the_same_plans_for_the_calibration_weeks_and_the_horizon(
    features, tmp_path
):
    # Half-price plans for every active SKU: over the horizon and over the calibration weeks.
    skus = features.loc[features["active"], ["article_id", "merchant_id"]].drop_duplicates()
    weeks = pd.date_range(ORIGIN - dt.timedelta(weeks=7), periods=12, freq="7D").date
    plans = skus.merge(pd.DataFrame({"week": weeks}), how="cross").astype(
        {"article_id": str, "merchant_id": str}
    )
    plans["price"] = 1.0
    settings = dataclasses.replace(FAST, calibration_weeks=4)
    memory = train_and_score(features, ORIGIN, settings, plans=plans)
    source = sharded(features, tmp_path / "lake", groups=4)
    written: list[pd.DataFrame] = []

    result = train_and_score_sharded(
        source,
        ORIGIN,
        settings,
        written.extend,
        EngineSettings(shard_rows_override=len(features) // 3),
        plans=plans,
    )

    assert result.planned_share["price"] == memory.planned_share["price"] == 1.0
    # Only the price is planned (the list price needs no plan): the promotion flag is left out.
    assert result.left_out == memory.left_out == ["promo"]
    pd.testing.assert_frame_equal(result.calibration, memory.calibration, rtol=1e-5)
    table = pd.concat(written, ignore_index=True)
    pd.testing.assert_frame_equal(
        table.sort_values(KEYS, ignore_index=True)[KEYS + VALUES],
        memory.table.sort_values(KEYS, ignore_index=True)[KEYS + VALUES],
        rtol=1e-5,
    )


def test_a_bounded_sample_still_forecasts_every_active_sku(features, tmp_path):
    source = sharded(features, tmp_path / "lake", groups=4)
    settings = ForecastSettings(horizon=4, n_estimators=15, threads=1, train_rows=2_000)

    result, table = run_sharded(source, settings, shard_rows=5_000)

    observed = int((features["weight"] > 0).sum())
    assert observed > 4 * settings.train_rows  # the sample is the point of this test
    assert 0.7 * settings.train_rows <= result.train_rows <= 1.3 * settings.train_rows
    active = features.loc[features["active"], ["article_id", "merchant_id"]].drop_duplicates()
    assert result.skus_scored == len(active) == table.groupby(KEYS[:2], observed=True).ngroups
    assert len(table) == 4 * len(active)
    assert (table[VALUES].to_numpy() >= 0).all()
    assert (table["q10"] <= table["q50"]).all() and (table["q50"] <= table["q90"]).all()
    assert result.calibration is not None  # calibrated on a sample of the sampled SKUs


def test_shards_arrive_in_sku_order_so_the_written_file_is_sorted(features, tmp_path):
    source = sharded(features, tmp_path / "lake", groups=6)

    _, table = run_sharded(source, FAST, shard_rows=3_000)

    keys = list(zip(table["article_id"], table["merchant_id"], table["horizon"], strict=True))
    assert keys == sorted(keys)


def test_shards_scored_on_two_threads_give_the_forecast_of_one_thread(features, tmp_path):
    source = sharded(features, tmp_path / "lake", groups=6)
    settings = ForecastSettings(horizon=4, n_estimators=15, threads=1, train_rows=3_000)

    one, one_table = run_sharded(source, settings, shard_rows=2_000)
    two, two_table = run_sharded(source, settings, shard_rows=2_000, executor=ThreadExecutor(2))

    assert two.train_rows == one.train_rows and two.skus_scored == one.skus_scored
    pd.testing.assert_frame_equal(two_table, one_table)


def test_shards_scored_on_threads_do_not_warn_of_the_inputs_young_skus_lack(features, tmp_path):
    source = sharded(features, tmp_path / "lake", groups=12)
    # No SKU has 104 weeks: every scoring step of every shard has a NaN input, as young SKUs do.
    settings = ForecastSettings(
        horizon=4, n_estimators=15, threads=1, train_rows=3_000, lags=(1, 2, 104)
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_sharded(source, settings, shard_rows=500, executor=ThreadExecutor(2))

    assert [str(w.message) for w in caught if "Found null values" in str(w.message)] == []


def test_the_thread_executor_starts_one_task_per_thread_ahead_of_its_reader():
    started: list[int] = []
    lock = threading.Lock()

    def task(item: int) -> int:
        with lock:
            started.append(item)
        return -item

    results = ThreadExecutor(2).map(task, (), range(20))
    first = next(results)
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:  # the pool starts what was submitted
        time.sleep(0.01)
    time.sleep(0.3)  # and would start a fourth by now, were one submitted
    started_while_reading_the_first = len(started)
    rest = list(results)

    assert first == 0
    assert started_while_reading_the_first == 3  # the first, then one ahead per thread
    assert rest == [-i for i in range(1, 20)]


def test_a_task_failing_on_a_thread_raises_its_error_to_the_reader_and_starts_nothing_more():
    started: list[int] = []
    lock = threading.Lock()

    def task(item: int) -> int:
        with lock:
            started.append(item)
        if item == 3:
            raise ValueError("shard 3 is broken")
        return item

    results = ThreadExecutor(2).map(task, (), range(20))

    with pytest.raises(ValueError, match="shard 3 is broken"):
        list(results)
    assert sorted(started) == list(range(len(started))) and len(started) <= 6


# ---- through Dagster ----

HISTORY_WEEKS = 60
SHARDS = {"shard_rows": 2_500}  # the 200 SKUs below in about five shards


@pytest.fixture(scope="module")
def validated(landing_factory, tmp_path_factory) -> Path:
    """A lake whose sales_history holds the window of ORIGIN."""
    landing = landing_factory(200, 64, ORIGIN + dt.timedelta(weeks=4), seed=11)
    root = tmp_path_factory.mktemp("validated") / "lake"
    shutil.copytree(landing, root)
    first = ORIGIN - dt.timedelta(weeks=HISTORY_WEEKS - 1)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sales_history],
            resources={"lake": LakeResource(root=str(root))},
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": ORIGIN.isoformat(),
            },
        )
        assert result.success
    return root


def forecast_with(root: Path, compute: ComputeResource) -> tuple[pd.DataFrame, dict]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sales_history, demand_features, demand_forecast],
            selection=[demand_features, demand_forecast],
            partition_key=ORIGIN.isoformat(),
            resources={"lake": LakeResource(root=str(root)), "compute": compute},
            instance=instance,
            run_config={
                "ops": {
                    "demand_features": {"config": {"history_weeks": HISTORY_WEEKS}},
                    "demand_forecast": {"config": {"horizon": 4, "n_estimators": 15, "threads": 1}},
                }
            },
        )
        assert result.success
        metadata = {
            key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
            for key, m in (
                (e.asset_key, e.event_specific_data.materialization)
                for e in result.get_asset_materialization_events()
            )
        }
    table = Lake(str(root)).read_partition("demand_forecast", "forecast_week", ORIGIN)
    return table.drop(columns="run_id"), metadata


def test_a_weekly_run_in_shards_writes_a_part_per_shard_with_whole_skus_per_row_group(
    validated, lake_copy
):
    root = lake_copy(validated)

    table, metadata = forecast_with(root, ComputeResource(engine="sharded", **SHARDS))

    assert metadata["demand_features"]["engine"] == "sharded"
    assert metadata["demand_features"]["shards"] > 1
    assert metadata["demand_forecast"]["engine"] == "sharded"
    folder = root / "demand_features" / f"forecast_week={ORIGIN}"
    manifest = Lake(str(root)).manifest("demand_features", "forecast_week", ORIGIN)
    assert len(manifest.parts) == metadata["demand_features"]["shards"]
    assert not (folder / "part-0.parquet").exists()
    seen: list[int] = []
    for part in manifest.parts:
        features = pq.ParquetFile(folder / part.path)
        for group in range(features.num_row_groups):
            skus = features.read_row_group(group, columns=["sku"])["sku"].to_numpy()
            assert (np.diff(skus) >= 0).all()
            assert not seen or skus[0] > seen[-1]  # no SKU is cut in two, numbers increase
            seen.extend(np.unique(skus))
    assert len(seen) == metadata["demand_features"]["skus"]
    assert len(table) == 4 * metadata["demand_forecast"]["skus_scored"]


def test_threads_and_dask_workers_write_the_tables_of_one_thread(validated, lake_copy):
    one_root, sharded_root, dask_root = (lake_copy(validated) for _ in range(3))
    one_table, _ = forecast_with(one_root, ComputeResource(engine="sharded", workers=1, **SHARDS))
    sharded_table, _ = forecast_with(
        sharded_root, ComputeResource(engine="sharded", workers=2, **SHARDS)
    )

    dask_table, metadata = forecast_with(
        dask_root, ComputeResource(engine="dask", workers=2, **SHARDS)
    )

    assert metadata["demand_features"]["engine"] == "dask"
    assert metadata["demand_features"]["shards"] > 2
    assert metadata["demand_forecast"]["engine"] == "dask"
    pd.testing.assert_frame_equal(
        Lake(str(dask_root)).read_partition("demand_features", "forecast_week", ORIGIN),
        Lake(str(sharded_root)).read_partition("demand_features", "forecast_week", ORIGIN),
    )
    pd.testing.assert_frame_equal(dask_table, sharded_table)
    pd.testing.assert_frame_equal(
        Lake(str(sharded_root)).read_partition("demand_features", "forecast_week", ORIGIN),
        Lake(str(one_root)).read_partition("demand_features", "forecast_week", ORIGIN),
    )
    pd.testing.assert_frame_equal(sharded_table, one_table)


def test_auto_keeps_a_window_in_memory_until_it_exceeds_the_budget_then_shards_it():
    budget_rows = 4 * 2**30 // MEMORY_BYTES_PER_ROW
    auto = EngineSettings(max_memory_gb=4, workers=2)

    assert auto.choose(budget_rows) == "memory"
    assert auto.choose(budget_rows + 1) == "sharded"


def test_a_shard_is_in_flight_on_every_local_worker_so_shards_shrink_with_the_workers():
    one = EngineSettings(engine="sharded", max_memory_gb=4, workers=1)
    threads = EngineSettings(engine="sharded", max_memory_gb=4, workers=2)
    local_dask = EngineSettings(engine="dask", max_memory_gb=4, workers=2)
    remote_dask = EngineSettings(
        engine="dask", max_memory_gb=4, workers=2, dask_address="tcp://x:1"
    )

    assert threads.shard_rows == local_dask.shard_rows == one.shard_rows // 2
    assert remote_dask.shard_rows == one.shard_rows  # its workers have memory of their own


def test_the_dask_executor_keeps_at_most_two_tasks_per_worker_ahead_of_its_reader():
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        results = DaskExecutor(client).map(abs, (), range(-20, 0))
        first = next(results)
        time.sleep(0.5)  # time for the scheduler to hear of whatever was submitted
        tasks_while_reading_the_first = len(cluster.scheduler.tasks)
        rest = list(results)

    assert first == 20
    assert 1 <= tasks_while_reading_the_first <= IN_FLIGHT_PER_WORKER + 1
    assert rest == list(range(19, 0, -1))


# ---- the services without Dagster ----


def test_the_core_services_give_the_weekly_assets_forecast_without_dagster(validated, lake_copy):
    through_dagster, _ = forecast_with(lake_copy(validated), ComputeResource(engine="memory"))
    root = lake_copy(validated)
    lake = Lake(str(root))
    window = FeatureWindow(
        history_weeks=HISTORY_WEEKS,
        min_history_weeks=FAST.min_history_weeks,
        active_weeks=FAST.active_weeks,
    )
    settings = dataclasses.replace(ForecastSettings(), horizon=4, n_estimators=15, threads=1)

    built = build_features(lake, ORIGIN, window, EngineSettings(engine="memory"))
    written = forecast(lake, ORIGIN, settings, "no-run", EngineSettings(engine="memory"))

    assert built.engine == written.engine == "memory"
    table = lake.read_partition("demand_forecast", "forecast_week", ORIGIN)
    assert set(table["run_id"]) == {"no-run"}
    pd.testing.assert_frame_equal(table.drop(columns="run_id"), through_dagster)


def test_the_core_services_import_no_dagster_module():
    code = (
        "import sys; import zeos_forecast.core.services, zeos_forecast.core.engine; "
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert printed.strip() == "[]"
