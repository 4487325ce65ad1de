"""Re-running weeks that exist replaces their partitions exactly: same rows, no duplicates, no
temporary files, in every dataset.

A small lake is forecast for two weeks, as the CLI does (`launch.forecast_week`). Then every drop
arrives again with the same rows under another file name (a drop's identity is its files' names,
sizes and checksums), so the history of the window is validated again in one range run (a
backfill over weeks that exist), the newer week is forecast again, then the older one. The lake
must end as it began, row for row apart from the run ids.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as pads
import pytest

from zeos_forecast.pipeline import launch
from zeos_forecast.storage import (
    LANDING_SALES,
    MANIFEST_FILE,
    PARTS_DATASETS,
    PARTS_FOLDER,
    SUCCESS_MARKER,
    Lake,
)

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
NEXT_WEEK = WEEK + dt.timedelta(weeks=1)
SKUS, WEEKS, HISTORY_WEEKS = 40, 20, 16
SKU = ["article_id", "merchant_id"]
# Dataset -> the columns that identify a row within one partition (file).
KEYS = {
    "sales_history": SKU,
    "demand_features": ["sku", "week"],
    "demand_forecast": [*SKU, "horizon"],
    "published_forecast": [*SKU, "horizon"],
    "published_forecast_latest": [*SKU, "horizon"],
}
PARTITIONED = ("sales_history", "demand_features", "demand_forecast", "published_forecast")
RUN_COLUMNS = ("run_id", "forecast_run_id")  # the only cells a re-run may change


@dataclass
class Snapshot:
    """Every file of the derived datasets, read back, at one moment."""

    taken: float
    files: dict[str, pd.DataFrame]  # relative path -> rows, sorted, run ids dropped
    mtimes: dict[str, float]
    hidden: list[str]  # dot files (temporaries) anywhere under the derived datasets
    run_ids: dict[str, set[str]]


def snapshot(root: Path) -> Snapshot:
    """A partition written in parts (`demand_features`) is one entry, `<folder>/_manifest.json`:
    its rows as the lake reads them through the manifest, and the manifest's mtime."""
    files, mtimes, run_ids, hidden = {}, {}, {}, []
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.startswith("landing") or not path.is_file():
            continue
        if path.name.startswith("."):
            hidden.append(relative)
            continue
        if path.name == MANIFEST_FILE:
            frame = parts_of(root, path)
        elif path.name.startswith("_") or PARTS_FOLDER in path.parts:
            continue  # a picture beside a partition's data (`_fan_chart.png`), or a part
        else:
            frame = pd.read_parquet(path)
        run_ids[relative] = {str(v) for c in RUN_COLUMNS if c in frame for v in frame[c]}
        frame = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame])
        files[relative] = frame.sort_values(list(frame.columns), ignore_index=True)
        mtimes[relative] = path.stat().st_mtime
    return Snapshot(time.time(), files, mtimes, hidden, run_ids)


def parts_of(root: Path, manifest: Path) -> pd.DataFrame:
    dataset, folder = manifest.parent.parent.name, manifest.parent.name
    key, value = folder.split("=")
    return Lake(str(root)).read_partition(dataset, key, dt.date.fromisoformat(value))


def dataset_of(relative: str) -> str:
    return relative.split("/", 1)[0]


@dataclass
class Reruns:
    root: Path
    instance: dg.DagsterInstance
    first: Snapshot
    again: Snapshot
    history_weeks_validated_again: int


@pytest.fixture(scope="module")
def reruns(landing_factory, tmp_path_factory, fast_forecast) -> Reruns:
    root = tmp_path_factory.mktemp("reruns") / "lake"
    shutil.copytree(landing_factory(SKUS, WEEKS, NEXT_WEEK, seed=13), root)
    window = {"history_weeks": HISTORY_WEEKS}

    def forecast(week: dt.date) -> launch.WeekRun:
        return launch.forecast_week(week, str(root), instance, fast_forecast, window, report=None)

    with dg.instance_for_test() as instance:
        for week in (WEEK, NEXT_WEEK):
            forecast(week)
        first = snapshot(root)
        time.sleep(0.01)  # so that a rewritten file's mtime differs from the first one's
        for marker in (root / LANDING_SALES).glob(f"*/{SUCCESS_MARKER}"):
            # Every drop arrives again, the same rows under another name, the marker last.
            (marker.parent / "part-0.parquet").rename(marker.parent / "again.parquet")
            marker.touch()
        validated = forecast(NEXT_WEEK).history_weeks_validated
        forecast(WEEK)
        yield Reruns(root, instance, first, snapshot(root), validated)


def test_the_reruns_rewrote_every_file_of_every_dataset(reruns):
    # Without this, "nothing changed" could mean "nothing ran".
    assert reruns.history_weeks_validated_again == HISTORY_WEEKS  # the whole window, one run
    rewritten = {p for p, mtime in reruns.again.mtimes.items() if mtime > reruns.first.taken}
    assert rewritten == set(reruns.first.files)


def test_reruns_leave_the_same_files_with_the_same_rows_in_every_dataset(reruns):
    first, again = reruns.first, reruns.again
    assert set(again.files) == set(first.files)
    assert {dataset_of(p) for p in again.files} >= {*KEYS, "forecast_accuracy"}
    for path, frame in first.files.items():
        pd.testing.assert_frame_equal(again.files[path], frame, obj=path)


def test_no_partition_holds_a_row_twice_after_the_reruns(reruns):
    for path, frame in reruns.again.files.items():
        keys = KEYS.get(dataset_of(path))
        duplicated = frame.duplicated(keys) if keys else frame.duplicated()
        assert not duplicated.any(), f"{path}: {int(duplicated.sum())} rows twice"


def test_no_temporary_file_is_left_behind(reruns):
    assert reruns.first.hidden == []
    assert reruns.again.hidden == []


def test_hive_readers_count_every_row_once(reruns):
    for name in PARTITIONED:
        files = {p: f for p, f in reruns.again.files.items() if dataset_of(p) == name}
        if name in PARTS_DATASETS:  # folder readers skip its `_parts`: read through the lake
            weeks = sorted(Lake(str(reruns.root)).partitions(name, "forecast_week"))
            read = Lake(str(reruns.root)).read_window(name, "forecast_week", weeks[0], weeks[-1])
            assert len(read) == sum(len(f) for f in files.values()), name
            continue
        dataset = pads.dataset(reruns.root / name, format="parquet", partitioning="hive")
        assert dataset.count_rows() == sum(len(f) for f in files.values()), name


def test_each_forecast_file_holds_one_run_and_the_latest_is_still_the_newer_week(reruns):
    for path, run_ids in reruns.again.run_ids.items():
        if dataset_of(path) in ("demand_forecast", "published_forecast_latest"):
            assert len(run_ids) == 1, path
    latest = reruns.again.files["published_forecast_latest/part-0.parquet"]
    assert set(latest["forecast_week"]) == {NEXT_WEEK}
    forecast_runs = reruns.instance.fetch_materializations(
        dg.AssetKey("demand_forecast"), limit=100
    ).records
    assert len(forecast_runs) == 4  # two first runs, two re-runs, every one recorded
