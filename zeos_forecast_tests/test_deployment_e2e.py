"""A real deployment (dagster-webserver, dagster-daemon): a dropped week is forecast unattended."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_landing
from local_servers import free_port, stop, tail

from zeos_forecast.pipeline.backfill import BACKFILL_TAG
from zeos_forecast.pipeline.checks import FORECAST_CHECKS
from zeos_forecast.pipeline.sensors import FORECAST_ASSETS
from zeos_forecast.pipeline.webserver import LAUNCH_BACKFILL, Webserver, WebserverUnreachable
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKSPACE_FILE = "workspace.yaml"
LAST = dt.date(2026, 11, 9)
BACKLOG_LAST = LAST - dt.timedelta(weeks=1)
SENSOR_INTERVAL_SECONDS = 3
STARTUP_TIMEOUT_SECONDS = 300
RUN_TIMEOUT_SECONDS = 300
QUIET_TICKS = 4
SENSOR = {
    "repositoryLocationName": "zeos_forecast",
    "repositoryName": "__repository__",
    "sensorName": "landing_sensor",
}

START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}
"""
RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { results { runId status creationTime tags { key value } assetSelection { path } } }
  }
}
"""
BACKFILLS = """{ partitionBackfillsOrError { ... on PartitionBackfills { results {
    id status partitionNames tags { key value } assetSelection { path } } } } }"""
LINEAGE = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
CHECK_EXECUTIONS = """
query($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 5) {
    status
  }
}
"""


@dataclass
class Deployment:
    webserver: Webserver
    lake: Path
    held_back: Path  # the week LAST, dropped by the test

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return self.webserver.graphql(query, variables)

    def backfills(self) -> list[dict]:
        return self.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]

    def runs(self, **tags: str) -> list[dict]:
        filter_ = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        return self.graphql(RUNS, {"filter": filter_})["runsOrError"]["results"]

    def forecast_runs(self, week: dt.date) -> list[dict]:
        return self.runs(**{"dagster/partition": week.isoformat()})

    def history_runs(self, week: dt.date) -> list[dict]:
        return self.runs(**{"dagster/asset_partition_range_end": week.isoformat()})

    def check_statuses(self, asset: str, week: dt.date) -> dict[str, list[str]]:
        return {
            check: [
                e["status"]
                for e in self.graphql(
                    CHECK_EXECUTIONS,
                    {"key": {"path": [asset]}, "check": check, "partition": week.isoformat()},
                )["assetCheckExecutions"]
            ]
            for check in FORECAST_CHECKS
        }


def _wait_for(what: str, condition, timeout: float = RUN_TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"{what}: not within {timeout} s")


def _succeeded(runs: list[dict], count: int = 1) -> bool:
    failed = [r for r in runs if r["status"] in ("FAILURE", "CANCELED")]
    assert not failed, failed
    return sum(r["status"] == "SUCCESS" for r in runs) >= count


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("deployment")
    lake, home = root / "lake", root / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    make_landing(lake, skus=60, weeks=30, last_week=LAST)
    held_back = root / "held_back"
    shutil.move(Lake(str(lake)).sales_drop_dir(LAST), held_back)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ZEOS_LAKE": str(lake),
        "ZEOS_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
    }
    port = free_port()
    log_paths = root / "webserver.log", root / "daemon.log"
    logs = log_paths[0].open("w"), log_paths[1].open("w")
    commands = [
        [str(BIN / "dagster-webserver"), "-w", WORKSPACE_FILE, "-h", "127.0.0.1", "-p", str(port)],
        [str(BIN / "dagster-daemon"), "run", "-w", WORKSPACE_FILE],
    ]
    processes: list[subprocess.Popen] = []
    try:
        webserver = Webserver(f"http://127.0.0.1:{port}")
        deployed = Deployment(webserver=webserver, lake=lake, held_back=held_back)
        # As a deployment does it: the webserver creates the instance's storage and loads the
        # code location before the daemon starts on the same SQLite files (started together,
        # both would create the same tables at once: dagster-io/dagster#11408).
        for command, log in zip(commands, logs, strict=True):
            output = {"stdout": log, "stderr": subprocess.STDOUT}
            processes.append(subprocess.Popen(command, cwd=PROJECT, env=env, **output))
            try:
                _wait_for("dagster-webserver answers", lambda: _answers(deployed, processes),
                          STARTUP_TIMEOUT_SECONDS)  # fmt: skip
            except (TimeoutError, AssertionError) as error:
                for each in logs:
                    each.flush()
                raise type(error)("\n".join([str(error), *map(tail, log_paths)])) from error
        yield deployed
    finally:
        for process in processes:
            stop(process)
        for log in logs:
            log.close()


WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries {
    loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _answers(deployment: Deployment, processes: list[subprocess.Popen]) -> bool:
    for process in processes:
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
    try:
        workspace = deployment.graphql(WORKSPACE)["workspaceOrError"]
    except WebserverUnreachable:
        return False
    # The webserver answers before it has loaded the code location: wait for that too.
    kinds = [
        (e["loadStatus"], (e["locationOrLoadError"] or {}).get("__typename"))
        for e in workspace.get("locationEntries", [])
    ]
    assert ("LOADED", "PythonError") not in kinds, f"the code location did not load: {workspace}"
    return ("LOADED", "RepositoryLocation") in kinds


def test_a_dropped_week_is_validated_forecast_and_deduplicated_without_anyone_clicking(
    deployment,
):
    started = deployment.graphql(START_SENSOR, {"selector": SENSOR})["startSensor"]
    assert started["__typename"] == "Sensor", started
    assert started["sensorState"]["status"] == "RUNNING"

    # First tick: the backlog is validated in one run, then only its latest week is forecast.
    _wait_for("backlog forecast", lambda: _succeeded(deployment.forecast_runs(BACKLOG_LAST)))
    assert len(deployment.runs(**{"dagster/sensor_name": "landing_sensor"})) == 2

    # A new week lands: data first, then the marker.
    target = Path(Lake(str(deployment.lake)).sales_drop_dir(LAST))
    target.mkdir(parents=True)
    shutil.copy2(deployment.held_back / "part-0.parquet", target / "part-0.parquet")
    dropped_at = time.time()
    (target / "_SUCCESS").touch()

    # Its history is up to date: one run validates it, forecasts it, checks and publishes.
    runs = _wait_for("run launched", lambda: deployment.forecast_runs(LAST))
    print(f"drop to launched run: {runs[0]['creationTime'] - dropped_at:.1f} s")
    _wait_for("forecast of the new week", lambda: _succeeded(deployment.forecast_runs(LAST)))
    [run] = deployment.forecast_runs(LAST)
    assert {"sales_history", "demand_forecast", "published_forecast"} <= {
        key["path"][-1] for key in run["assetSelection"]
    }
    assert deployment.history_runs(LAST) == []
    assert (deployment.lake / f"demand_forecast/forecast_week={LAST}/part-0.parquet").exists()
    statuses = deployment.check_statuses("demand_forecast", LAST)
    assert all(s == ["SUCCEEDED"] for s in statuses.values()), statuses
    assert (deployment.lake / f"published_forecast/forecast_week={LAST}/part-0.parquet").exists()

    # The same drop again (a re-sent marker) starts nothing.
    (target / "_SUCCESS").touch()
    time.sleep(QUIET_TICKS * SENSOR_INTERVAL_SECONDS + 5)
    assert len(deployment.forecast_runs(LAST)) == 1

    # A corrected drop of the same week is validated and forecast again.
    frame = pd.read_parquet(target / "part-0.parquet")
    frame.loc[0, "units_sold"] = frame.loc[0, "units_sold"] + 7
    frame.to_parquet(target / "part-0.parquet", index=False)
    (target / "_SUCCESS").touch()
    _wait_for("forecast of the corrected week",
              lambda: _succeeded(deployment.forecast_runs(LAST), count=2))  # fmt: skip
    assert deployment.history_runs(LAST) == []


def test_past_weeks_backfilled_from_the_ui_each_see_only_their_own_history(deployment):
    weeks = [LAST - dt.timedelta(weeks=n) for n in (4, 3)]
    assets = ["demand_features", "demand_forecast", "published_forecast"]
    params = {
        "partitionNames": [w.isoformat() for w in weeks],
        "assetSelection": [{"path": [a]} for a in assets],
    }

    launched = deployment.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]

    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    for week in weeks:
        _wait_for(f"backfill of {week}", lambda w=week: _succeeded(deployment.forecast_runs(w)))
        features = Lake(str(deployment.lake)).read_partition(
            "demand_features", "forecast_week", week, dates_as_datetime=True
        )
        assert features["week"].max() == pd.Timestamp(week)
        forecast = pd.read_parquet(
            deployment.lake / f"demand_forecast/forecast_week={week}/part-0.parquet"
        )
        assert forecast["week"].min() == week + dt.timedelta(weeks=1)


def zeos_forecast(*args: str) -> subprocess.CompletedProcess:
    """The command line in its own process, as a user runs it."""
    return subprocess.run(
        [str(BIN / "zeos-forecast"), *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=2 * RUN_TIMEOUT_SECONDS,
    )


def test_a_cli_backfill_through_the_webserver_is_one_dagster_backfill_of_its_weeks(deployment):
    weeks = [LAST - dt.timedelta(weeks=n) for n in (6, 5)]
    earlier = {b["id"] for b in deployment.backfills()}

    done = zeos_forecast(
        "backfill", "--lake", str(deployment.lake), "--from", str(weeks[0]), "--to", str(weeks[1]),
        "--webserver", deployment.webserver.url,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    [backfill] = [b for b in deployment.backfills() if b["id"] not in earlier]
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert sorted(backfill["partitionNames"]) == [w.isoformat() for w in weeks]
    assert {"/".join(key["path"]) for key in backfill["assetSelection"]} == set(FORECAST_ASSETS)
    assert f"Backfill {backfill['id']} of 2 weeks" in done.stdout
    assert f"{deployment.webserver.url}/runs/b/{backfill['id']}" in done.stdout
    assert "backfill: 2/2 weeks (100%" in done.stdout
    [tag] = [t["value"] for t in backfill["tags"] if t["key"] == BACKFILL_TAG]
    for week in weeks:
        runs = deployment.runs(**{"dagster/partition": week.isoformat(), BACKFILL_TAG: tag})
        assert runs and all(run["status"] == "SUCCESS" for run in runs), runs
        assets = {key["path"][-1] for run in runs for key in run["assetSelection"]}
        assert assets == set(FORECAST_ASSETS)
        assert (deployment.lake / f"published_forecast/forecast_week={week}").is_dir()
    # The later week's forecast_accuracy waits for the earlier week's forecast, in a run of its own:
    # why model options, one run config for every run of a backfill, cannot go with --webserver.
    later = deployment.runs(**{"dagster/partition": weeks[1].isoformat(), BACKFILL_TAG: tag})
    assert ["forecast_accuracy"] in [[k["path"][-1] for k in r["assetSelection"]] for r in later]


def test_a_range_the_lake_cannot_backfill_is_refused_before_anything_is_submitted(deployment):
    first, last = LAST - dt.timedelta(weeks=1), LAST + dt.timedelta(weeks=1)  # no drop for last
    earlier = deployment.backfills()

    refused = zeos_forecast(
        "backfill", "--lake", str(deployment.lake), "--from", str(first), "--to", str(last),
        "--webserver", deployment.webserver.url,
    )  # fmt: skip

    assert refused.returncode == 1
    assert f"No complete sales drop under {deployment.lake} for 1 of the 3 weeks" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert deployment.backfills() == earlier


def test_the_deployment_returns_the_lineage_from_sales_to_forecast(deployment):
    nodes = deployment.graphql(LINEAGE)["assetNodes"]
    parents = {
        "/".join(n["assetKey"]["path"]): ["/".join(d["path"]) for d in n["dependencyKeys"]]
        for n in nodes
    }

    assert parents["demand_features"] == ["sales_history"]
    assert parents["demand_forecast"] == ["demand_features"]
    assert parents["published_forecast"] == ["demand_forecast"]
