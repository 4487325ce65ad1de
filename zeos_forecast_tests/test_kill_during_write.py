"""Processes killed (SIGKILL) while they write the forecast: the lake stays whole every time.

The module forecasts a small lake once, then kills writers of its forecast partition:
- `partition_writer.py` (a process that replaces the partition with a large table through
  `Lake.write_partition`), at moments spread over its write. Each writer is frozen (SIGSTOP)
  first, so the test knows whether the write was still under way when the kill came;
- a real `zeos-forecast forecast` run, once its forecast step has started.
Then a real run forecasts the week again. The tests check what each kill left behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from zeos_forecast.pipeline import launch
from zeos_forecast.storage import STALE_TEMPORARY_SECONDS, Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS, HISTORY_WEEKS = 60, 30, 26
WRITER = Path(__file__).with_name("partition_writer.py")
WRITER_ROWS = 1_000_000
# When, as a share of a measured write, each writer is killed: from the first bytes to the end.
KILL_AT = (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85)
WAIT_SECONDS = 120.0  # every wait below is bounded by this
POLL_SECONDS = 0.002
FORECAST = "demand_forecast"
DERIVED = ("sales_history", "demand_features", FORECAST, "published_forecast")


@dataclass
class Kill:
    """What one kill left: was the write under way, and the partition's bytes after it."""

    moment: str
    mid_write: bool
    before: str
    after: str
    temporary_bytes: int


# Relative path -> (sha256, rows; None when the file cannot be read), as a kill left them.
Files = dict[str, tuple[str, int | None]]


@dataclass
class Killed:
    root: Path
    kills: list[Kill]
    real_run: dict[str, tuple[Files, Files]]  # dataset -> (before, after the kill)
    aged: list[Path]
    fresh: list[Path]
    next_run: subprocess.CompletedProcess


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def partition_folder(root: Path, dataset: str = FORECAST) -> Path:
    return root / dataset / f"forecast_week={WEEK}"


def temporaries(folder: Path) -> set[Path]:
    return set(folder.glob(".part-0.parquet.*.tmp"))


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {WAIT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)


def freeze_and_kill(process: subprocess.Popen, inspect: Callable[[], object]):
    """SIGSTOP, `inspect()` the frozen state (what the kill will leave), then SIGKILL."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: _state(process.pid) in ("T", "t", "Z"), "the process stopped")
        return inspect()
    finally:
        process.kill()
        process.wait(timeout=WAIT_SECONDS)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def start_writer(root: Path, seed: int) -> subprocess.Popen:
    args = [sys.executable, str(WRITER), str(root), WEEK.isoformat(), str(WRITER_ROWS), str(seed)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def write_seconds(scratch: Path) -> float:
    """How long one writer takes from its temporary file's first byte to the rename."""
    folder = partition_folder(scratch)
    writer = start_writer(scratch, seed=0)
    try:
        wait_for(lambda: bool(temporaries(folder)), "temporary file", writer)
        started = time.monotonic()
        wait_for(lambda: (folder / "part-0.parquet").exists(), "renamed partition", writer)
        return time.monotonic() - started
    finally:
        writer.wait(timeout=WAIT_SECONDS)


def kill_writer(root: Path, seed: int, delay: float, moment: str) -> Kill:
    folder = partition_folder(root)
    final = folder / "part-0.parquet"
    before, existing = digest(final), temporaries(folder)
    writer = start_writer(root, seed)
    try:
        wait_for(lambda: bool(temporaries(folder) - existing), "temporary file", writer)
        [temporary] = temporaries(folder) - existing
        time.sleep(delay)

        def inspect() -> tuple[bool, int]:
            mid_write = temporary.exists()
            return mid_write, temporary.stat().st_size if mid_write else 0

        mid_write, size = freeze_and_kill(writer, inspect)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=WAIT_SECONDS)
    return Kill(moment, mid_write, before, digest(final), size)


def cli_forecast(root: Path) -> list[str]:
    command = [sys.executable, "-m", "zeos_forecast.cli", "forecast", "--lake", str(root)]
    week = ["--week", WEEK.isoformat(), "--history-weeks", str(HISTORY_WEEKS)]
    return [*command, *week, "--n-estimators", "15", "--horizon", "6", "--threads", "1"]


def derived_files(root: Path) -> dict[str, Files]:
    return {
        name: {str(p.relative_to(root)): (digest(p), rows(p)) for p in parquet_files(root / name)}
        for name in DERIVED
    }


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def rows(path: Path) -> int | None:
    try:
        return pq.read_table(path).num_rows
    except Exception:
        return None


def kill_real_run_in_its_forecast_step(root: Path, env: dict[str, str]):
    features = partition_folder(root, "demand_features") / "_manifest.json"  # (in parts)
    features_written = features.stat().st_mtime_ns
    before = derived_files(root)
    run = subprocess.Popen(
        cli_forecast(root),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # New features are written: the run is in demand_forecast (training, then writing).
        wait_for(lambda: features.stat().st_mtime_ns > features_written, "new features", run)
        freeze_and_kill(run, lambda: None)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=WAIT_SECONDS)
    after = derived_files(root)
    return {name: (before[name], after[name]) for name in DERIVED}


@pytest.fixture(scope="module")
def killed(landing_factory, tmp_path_factory, fast_forecast) -> Killed:
    root = landing_factory(SKUS, WEEKS, WEEK, seed=21)
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    window = {"history_weeks": HISTORY_WEEKS}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)

    seconds = write_seconds(tmp_path_factory.mktemp("scratch"))
    kills = [
        kill_writer(root, seed, share * seconds, f"{share:.0%} into a {seconds:.2f} s write")
        for seed, share in enumerate(KILL_AT, start=1)
    ]
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    real_run = kill_real_run_in_its_forecast_step(root, env)

    # Half the leftovers are made older than the stale age; the others could be a live writer's.
    leftovers = sorted(temporaries(partition_folder(root)))
    aged, fresh = leftovers[::2], leftovers[1::2]
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    for path in aged:
        os.utime(path, (old, old))
    next_run = subprocess.run(
        cli_forecast(root), env=env, capture_output=True, text=True, timeout=600
    )
    return Killed(root, kills, real_run, aged, fresh, next_run)


def test_a_write_killed_at_any_moment_leaves_the_previous_forecast_complete_and_readable(killed):
    mid_write = [kill for kill in killed.kills if kill.mid_write]
    for kill in mid_write:
        assert kill.after == kill.before, f"killed {kill.moment}: the partition changed"
    for kill in killed.kills:
        if not kill.mid_write:  # the rename came before the kill: the new file, whole
            assert kill.after != kill.before
    # Aimed kills that all came too late would test nothing.
    assert mid_write, [kill.moment for kill in killed.kills]
    print(
        f"\n{len(killed.kills)} writers killed, {len(mid_write)} in mid-write "
        f"({', '.join(f'{k.temporary_bytes / 1e6:.1f} MB' for k in mid_write)} written), "
        "0 partitions corrupted"
    )


def test_a_killed_write_leaves_a_dot_temporary_that_no_reader_sees(killed):
    # Whatever the partition holds, every reader sees its one file, never the temporaries.
    folder = partition_folder(killed.root)
    assert killed.fresh, "no temporary left to hide"
    assert all(path.name.startswith(".") for path in killed.fresh)
    rows = pq.read_metadata(folder / "part-0.parquet").num_rows
    lake = Lake(str(killed.root))
    assert list(lake.partitions(FORECAST, "forecast_week")) == [WEEK]
    assert len(lake.read_partition(FORECAST, "forecast_week", WEEK)) == rows
    assert len(lake.read_window(FORECAST, "forecast_week", WEEK, WEEK)) == rows
    by_pyarrow = pads.dataset(killed.root / FORECAST, format="parquet", partitioning="hive")
    assert by_pyarrow.count_rows() == rows
    glob = str(killed.root / FORECAST / "*" / "*.parquet")
    [(by_duckdb,)] = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    assert by_duckdb == rows


def test_a_real_run_killed_in_its_forecast_step_leaves_every_partition_whole(killed):
    for name, (before, after) in killed.real_run.items():
        # The features, written in parts, were published before the kill: a new version's
        # parts beside the one they replaced (kept for its readers). Every other dataset's
        # files are the same files.
        if name != "demand_features":
            assert set(after) == set(before), f"{name}: files appeared or vanished"
        for path, (_, count) in after.items():
            assert count is not None and count > 0, f"{path} is not a whole parquet file"
    lake = Lake(str(killed.root))
    features = lake.read_partition("demand_features", "forecast_week", WEEK)
    assert len(features) == lake.partition_layout("demand_features", "forecast_week", WEEK)[1]
    forecast_before, forecast_after = killed.real_run[FORECAST]
    published_before, published_after = killed.real_run["published_forecast"]
    # The kill came while the forecast was being made: nothing of it reached the planners.
    if forecast_after == forecast_before:
        assert published_after == published_before


def test_the_next_run_succeeds_and_deletes_stale_temporaries_but_not_a_live_writers(killed):
    assert killed.next_run.returncode == 0, killed.next_run.stderr[-3_000:]
    folder = partition_folder(killed.root)
    assert killed.aged, "no stale temporary to delete"
    assert not any(path.exists() for path in killed.aged)
    assert all(path.exists() for path in killed.fresh)
    forecast = Lake(str(killed.root)).read_partition(FORECAST, "forecast_week", WEEK)
    assert forecast["run_id"].nunique() == 1
    assert not forecast["run_id"].iloc[0].startswith("writer-")
    per_sku = forecast.groupby(["article_id", "merchant_id"]).size()
    assert (per_sku == 6).all() and len(per_sku) > 0
    published = pq.read_table(
        partition_folder(killed.root, "published_forecast") / "part-0.parquet"
    ).to_pandas()
    assert set(published["run_id"]) == set(forecast["run_id"])
    assert temporaries(folder) == set(killed.fresh)
