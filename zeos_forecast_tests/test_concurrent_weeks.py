"""One run of a week at a time: a second run of the same week says so and changes nothing.

Two `zeos-forecast forecast` processes of one week started together: one runs and publishes, the
other exits 1 saying the week is already running, and no run fails. A week the instance has an
unfinished run of (one the daemon launched) is refused the same way; another week, or another
lake, is not held up.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from zeos_forecast.cli import main
from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.resources import LAKE_TAG, lake_tags
from zeos_forecast.pipeline.week_lock import WeekAlreadyRunning, hold_week

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
CONSOLE_SCRIPT = Path(sys.executable).with_name("zeos-forecast")
FLAGS = ["--history-weeks", "40", "--n-estimators", "60", "--horizon", "4", "--threads", "1"]


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(300, 40, WEEK, seed=21)


def test_two_cli_runs_of_one_week_started_together_run_once_and_the_other_says_why(
    landing, lake_copy, dagster_home
):
    root = lake_copy(landing)
    args = [str(CONSOLE_SCRIPT), "forecast", "--lake", str(root), "--week", str(WEEK), *FLAGS]
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    # The instance's storage is created once here: two processes creating it at once race in
    # its schema migration, which is not what this test is about.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs()
        instance.get_latest_materialization_event(dg.AssetKey("sales_history"))
        instance.all_instigator_state()
    both = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outcomes = [(p.wait(timeout=600), *p.communicate(timeout=60)) for p in both]
    finally:
        for process in both:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], outcomes
    refused = next(err for code, _, err in outcomes if code == 1)
    assert f"Week {WEEK} of {root} is already running" in refused
    assert (root / "published_forecast" / f"forecast_week={WEEK}").is_dir()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        statuses = {run.status for run in instance.get_runs()}
    assert statuses == {dg.DagsterRunStatus.SUCCESS}


def test_a_week_held_by_another_run_is_refused_and_another_week_is_not(
    landing, lake_copy, instance, fast_forecast
):
    root = lake_copy(landing)
    window = {"history_weeks": 40}

    with hold_week(instance, str(root), WEEK):
        with pytest.raises(WeekAlreadyRunning, match="already running"):
            launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
        earlier = WEEK - dt.timedelta(weeks=1)
        launch.forecast_week(
            earlier, str(root), instance, fast_forecast, {"history_weeks": 39}, report=None
        )
    assert not (root / "demand_forecast" / f"forecast_week={WEEK}").exists()


def test_a_week_with_an_unfinished_run_launched_by_the_daemon_is_refused_by_the_cli(
    landing, lake_copy, dagster_home, capsys
):
    root = lake_copy(landing)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        running = instance.create_run_for_job(
            dg.GraphDefinition("weekly_forecast").to_job(),
            tags={"dagster/partition": WEEK.isoformat(), **lake_tags(str(root))},
            status=dg.DagsterRunStatus.STARTED,
        )
        other_lake = instance.create_run_for_job(
            dg.GraphDefinition("weekly_forecast").to_job(),
            tags={"dagster/partition": WEEK.isoformat(), LAKE_TAG: "s3://another/lake"},
            status=dg.DagsterRunStatus.STARTED,
        )

    code = main(["forecast", "--lake", str(root), "--week", str(WEEK), *FLAGS])

    err = capsys.readouterr().err
    assert code == 1
    assert f"run {running.run_id} is STARTED" in err
    assert other_lake.run_id not in err
    assert not (root / "sales_history").exists()
