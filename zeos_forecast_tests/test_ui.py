"""`make dev` works: the real dagster-webserver serves our code location and the CLI's runs."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from local_servers import free_port, stop

from zeos_forecast.cli import main
from zeos_forecast.pipeline.webserver import Webserver

PROJECT = Path(__file__).resolve().parents[1]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
STARTUP_TIMEOUT_SECONDS = 120
WEEK = "2026-11-16"

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName description kinds
               dependencyKeys { path } isPartitioned } }
"""
RUNS_QUERY = """
{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""

pytestmark = pytest.mark.e2e


def _graphql(port: int, query: str) -> dict:
    return Webserver(f"http://127.0.0.1:{port}").graphql(query)


def _wait_until_serving(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"dagster-webserver did not answer within {STARTUP_TIMEOUT_SECONDS} s")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """A webserver on workspace.yaml, after the CLI forecast one week into the same instance."""
    root = tmp_path_factory.mktemp("ui")
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster"), "ZEOS_LAKE": str(root / "lake")}
    (root / "dagster").mkdir()
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "ZEOS_LAKE")}
    os.environ.update({k: env[k] for k in saved})
    try:
        assert main(["generate", "--skus", "80", "--weeks", "30", "--last-week", WEEK]) == 0
        assert (
            main(["forecast", "--week", WEEK, "--history-weeks", "30", "--n-estimators", "5"]) == 0
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    port = free_port()
    process = subprocess.Popen(
        [str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(port, process)
        yield port
    finally:
        stop(process)


def test_the_ui_shows_the_lineage_from_sales_history_to_the_forecast_and_its_accuracy(webserver):
    nodes = {
        "/".join(n["assetKey"]["path"]): n for n in _graphql(webserver, ASSETS_QUERY)["assetNodes"]
    }

    assert set(nodes) >= {"sales_history", "demand_features", "demand_forecast"}
    assert nodes["demand_features"]["dependencyKeys"] == [{"path": ["sales_history"]}]
    assert nodes["demand_forecast"]["dependencyKeys"] == [{"path": ["demand_features"]}]
    accuracy_inputs = {p["path"][0] for p in nodes["forecast_accuracy"]["dependencyKeys"]}
    assert accuracy_inputs == {"sales_history", "demand_forecast"}


def test_every_asset_in_the_ui_has_a_description_a_group_kinds_and_weekly_partitions(webserver):
    for node in _graphql(webserver, ASSETS_QUERY)["assetNodes"]:
        assert node["description"], node["assetKey"]
        assert node["groupName"] in {"demand", "forecast", "accuracy"}
        assert node["kinds"], node["assetKey"]
        assert node["isPartitioned"], node["assetKey"]


def test_the_ui_lists_the_runs_the_cli_made_with_their_partition(webserver):
    runs = _graphql(webserver, RUNS_QUERY)["runsOrError"]["results"]
    tags = [{t["key"]: t["value"] for t in run["tags"]} for run in runs]

    assert all(run["status"] == "SUCCESS" for run in runs)
    assert {"dagster/partition": WEEK} in [
        {k: v for k, v in t.items() if k == "dagster/partition"} for t in tags
    ]
    assert any(t.get("dagster/asset_partition_range_end") == WEEK for t in tags)
