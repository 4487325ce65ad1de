"""The dask engine on a real cluster: a `dask scheduler` and two `dask worker` processes started
here on 127.0.0.1, and the lake on moto's S3 server, so the workers reach the data only through
S3 (each runs in its own folder; nothing of the lake is on a local disk)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from local_servers import free_port, stop, tail
from s3_server import moto_s3_server
from weekly_graph import demand_features, demand_forecast, sales_history

from zeos_forecast.datasets.landing import write_landing
from zeos_forecast.datasets.synthetic import generate_panel
from zeos_forecast.pipeline.resources import ComputeResource

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

ORIGIN = dt.date(2025, 6, 2)
HISTORY_WEEKS = 60
SHARDS = {"shard_rows": 2_500}  # the 200 SKUs below in about five shards
START_SECONDS = 60.0
WORKERS = 2


@dataclass(frozen=True)
class Cluster:
    address: str
    folders: tuple[Path, ...]


def _dask(*arguments: str, folder: Path, log: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    # No AWS settings in their environment: what they read comes through the run's S3 store.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("dask")), *arguments],
            cwd=folder,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    from dask.distributed import Client

    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler_log = root / "scheduler.log"
    processes = [
        _dask(
            "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
            folder=root / "scheduler", log=scheduler_log,
        )
    ]  # fmt: skip
    folders = tuple(root / f"worker-{i}" for i in range(WORKERS))
    try:
        for i, folder in enumerate(folders):
            processes.append(
                _dask(
                    "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                    "--no-dashboard", "--local-directory", str(folder / "scratch"),
                    folder=folder, log=root / f"worker-{i}.log",
                )
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        with Client(address, timeout=START_SECONDS) as client:
            client.wait_for_workers(WORKERS, timeout=max(deadline - time.monotonic(), 1.0))
        yield Cluster(address, folders)
    except Exception as error:
        logs = "\n".join(tail(log) for log in sorted(root.glob("*.log")))
        raise RuntimeError(f"the dask cluster did not start: {error}\n{logs}") from error
    finally:
        for process in reversed(processes):
            stop(process, timeout=20)


@pytest.fixture(scope="module")
def s3_lake() -> Iterator[tuple]:
    with moto_s3_server() as server:
        bucket = server.create_bucket()
        resource = server.lake_resource(f"s3://{bucket}/lake")
        write_landing(
            generate_panel(200, 64, ORIGIN + dt.timedelta(weeks=4), seed=11), resource.open()
        )
        first = ORIGIN - dt.timedelta(weeks=HISTORY_WEEKS - 1)
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [sales_history],
                resources={"lake": resource, "compute": ComputeResource()},
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": ORIGIN.isoformat(),
                },
            )
            assert result.success
        yield server, resource


def _forecast(resource, compute: ComputeResource) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [sales_history, demand_features, demand_forecast],
            selection=[demand_features, demand_forecast],
            partition_key=ORIGIN.isoformat(),
            resources={"lake": resource, "compute": compute},
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
            e.asset_key.to_user_string(): {
                k: v.value for k, v in e.event_specific_data.materialization.metadata.items()
            }
            for e in result.get_asset_materialization_events()
        }
    lake = resource.open()
    features = lake.read_partition("demand_features", "forecast_week", ORIGIN)
    forecast = lake.read_partition("demand_forecast", "forecast_week", ORIGIN)
    return features, forecast.drop(columns="run_id"), metadata


def test_two_dask_workers_on_s3_build_and_score_the_shards_of_one_thread(cluster, s3_lake):
    from dask.distributed import Client, get_task_stream

    _, resource = s3_lake
    one_features, one_forecast, _ = _forecast(
        resource, ComputeResource(engine="sharded", workers=1, **SHARDS)
    )

    with Client(cluster.address) as client, get_task_stream(client) as stream:
        features, forecast, metadata = _forecast(
            resource, ComputeResource(engine="dask", dask_address=cluster.address, **SHARDS)
        )
        workers = set(client.scheduler_info()["workers"])

    assert metadata["demand_features"]["engine"] == "dask"
    assert metadata["demand_features"]["shards"] > 2
    assert metadata["demand_forecast"]["engine"] == "dask"
    # Both worker processes built and scored shards.
    assert {task["worker"] for task in stream.data} == workers
    assert len(workers) == WORKERS
    pd.testing.assert_frame_equal(features, one_features)
    pd.testing.assert_frame_equal(forecast, one_forecast)
    # The workers kept nothing of the lake on their disks.
    for folder in cluster.folders:
        assert not list(folder.rglob("*.parquet"))
