"""What the CLI says about runs that are not plainly fine: failed warning checks, killed runs.

- A check of warning severity that does not pass (a 10x jump in a week's units) is recorded in
  Dagster and printed by the CLI on stderr, with its week and numbers; the exit code stays 0.
- A `zeos-forecast forecast` killed with SIGKILL mid-run leaves no child process behind (the
  compute-log `tail -F` processes are stopped within seconds), and its unfinished runs are marked
  failed, with the reason, the next time the CLI starts.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import psutil
import pytest

from zeos_forecast.cli import main
from zeos_forecast.pipeline.dead_runs import PROCESS_TAG, fail_runs_of_dead_processes, process_tag

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS = 40, 14
CONSOLE_SCRIPT = Path(sys.executable).with_name("zeos-forecast")
FLAGS = ["--history-weeks", str(WEEKS), "--n-estimators", "5", "--horizon", "4", "--threads", "1"]
UNFINISHED = {
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
}


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, WEEK, seed=8)


def test_a_failed_warning_check_is_printed_and_the_exit_code_stays_0(
    landing, lake_copy, dagster_home, capsys
):
    root = lake_copy(landing)
    drop = root / "landing" / "sales" / f"week={WEEK}" / "part-0.parquet"
    frame = pd.read_parquet(drop)
    frame.assign(units_sold=frame["units_sold"] * 10 + 5).to_parquet(drop, index=False)
    (drop.parent / "_SUCCESS").touch()  # files first, the marker last

    code = main(["validate", "--lake", str(root), "--week", WEEK.isoformat()])

    err = capsys.readouterr().err
    assert code == 0
    assert f"warn: check sales_history volume_stable did not pass for week {WEEK}" in err
    assert "ratio" in err


def runs_of(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


def test_a_killed_cli_run_leaves_no_child_process_and_is_marked_failed_at_the_next_start(
    landing, lake_copy, dagster_home, capsys
):
    root = lake_copy(landing)
    args = ["forecast", "--lake", str(root), "--week", WEEK.isoformat(), *FLAGS]
    cli = subprocess.Popen(
        [str(CONSOLE_SCRIPT), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
    )
    try:
        children: list[psutil.Process] = []
        deadline = time.monotonic() + 180  # bounded: imports and the first run take ~20 s
        while time.monotonic() < deadline and cli.poll() is None:
            unfinished = [r for r in runs_of(dagster_home) if r.status in UNFINISHED]
            children = psutil.Process(cli.pid).children(recursive=True)
            if unfinished and any("tail" in c.name() for c in children):
                break
            time.sleep(0.1)
        assert cli.poll() is None, "the run finished before it could be killed"
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=30)

    left = []
    deadline = time.monotonic() + 15  # Dagster's orphan watcher looks once a second
    while time.monotonic() < deadline:
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.2)
    assert left == []
    killed = [r for r in runs_of(dagster_home) if r.status in UNFINISHED]
    assert killed and all(r.tags[PROCESS_TAG].split("/")[1] == str(cli.pid) for r in killed)

    assert main(["validate", "--lake", str(root), "--week", WEEK.isoformat()]) == 0

    err = capsys.readouterr().err
    by_id = {r.run_id: r for r in runs_of(dagster_home)}
    for run in killed:
        assert by_id[run.run_id].status == dg.DagsterRunStatus.FAILURE
        assert f"Marked run {run.run_id} failed: its process (pid {cli.pid}) is gone" in err


def test_unfinished_runs_of_a_live_process_or_without_the_tag_are_left_alone(instance):
    live = instance.create_run_for_job(dg.GraphDefinition("live").to_job(), tags=process_tag())
    untagged = instance.create_run_for_job(dg.GraphDefinition("untagged").to_job())

    assert fail_runs_of_dead_processes(instance) == []
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    assert instance.get_run_by_id(untagged.run_id).status == dg.DagsterRunStatus.NOT_STARTED
