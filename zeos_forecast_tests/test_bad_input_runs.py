"""Bad landing drops make the run fail with a clear error, write nothing downstream, touch no input.

Each case adds one corrupted file (parquet or CSV) to the origin week's drop and runs the week
through `launch.forecast_week` on a real Dagster instance, as the CLI does.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from zeos_forecast.pipeline import launch
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS = 150, 64
HISTORY_WEEKS = 60
WINDOW = [WEEK - dt.timedelta(weeks=i) for i in reversed(range(HISTORY_WEEKS))]
DOWNSTREAM = ("demand_features", "demand_forecast")


@dataclass(frozen=True)
class Corruption:
    """A bad file for a drop: its name, the column the error must name, a text of a bad row."""

    name: str
    file: str
    column: str
    sample: str
    write: Callable[[Path, pd.DataFrame], None]


def new_skus(good: pd.DataFrame, rows: int = 3) -> pd.DataFrame:
    """Rows of SKUs that are not in the good file, so only the corruption is wrong with them."""
    frame = good.head(rows).copy()
    frame["article_id"] = [f"ABAD{i:04d}" for i in range(rows)]
    return frame


def missing_column(path: Path, good: pd.DataFrame) -> None:
    new_skus(good).drop(columns="units_sold").to_parquet(path, index=False)


def wrong_type(path: Path, good: pd.DataFrame) -> None:
    frame = new_skus(good).astype({"units_sold": object})
    frame.loc[frame.index[1], "units_sold"] = "abc"
    frame.to_csv(path, index=False)


def negative_units(path: Path, good: pd.DataFrame) -> None:
    frame = new_skus(good)
    frame.loc[frame.index[2], "units_sold"] = -3.0
    frame.to_parquet(path, index=False)


def duplicate_keys(path: Path, good: pd.DataFrame) -> None:
    good.iloc[[5, 6]].to_csv(path, index=False)  # the same SKUs as in part-0.parquet


def week_not_matching_folder(path: Path, good: pd.DataFrame) -> None:
    frame = new_skus(good)
    frame["week"] = WEEK - dt.timedelta(weeks=1)
    frame.to_parquet(path, index=False)


CORRUPTIONS = [
    Corruption("missing column", "late.parquet", "units_sold", "ABAD0000", missing_column),
    Corruption("wrong type", "late.csv", "units_sold", "abc", wrong_type),
    Corruption("negative units", "late.parquet", "units_sold", "-3", negative_units),
    # "extra.csv" sorts before "part-0.parquet": the error names the first file with a duplicate.
    Corruption(
        "duplicate keys", "extra.csv", "article_id, merchant_id", "part-0.parquet", duplicate_keys
    ),
    Corruption(
        "week not matching folder",
        "late.parquet",
        "week",
        str(WEEK - dt.timedelta(weeks=1)),
        week_not_matching_folder,
    ),
]


def drop_folder(root: Path, week: dt.date = WEEK) -> Path:
    return root / "landing" / "sales" / f"week={week}"


def corrupt(root: Path, corruption: Corruption) -> Path:
    """Adds the bad file to the origin week's drop and marks the drop complete again."""
    folder = drop_folder(root)
    good = pd.read_parquet(folder / "part-0.parquet")
    path = folder / corruption.file
    corruption.write(path, good)
    (folder / "_SUCCESS").touch()  # a re-drop: newer than any sales_history already written
    return path


def run_week(root: Path, instance, fast_forecast, fast_window) -> str:
    with pytest.raises(launch.RunFailed) as failure:
        launch.forecast_week(WEEK, str(root), instance, fast_forecast, fast_window, report=None)
    return str(failure.value)


def assert_names_file_column_and_rows(message: str, path: Path, corruption: Corruption) -> None:
    assert str(path) in message, message
    assert f"column '{corruption.column}'" in message, message
    assert "Sample of offending rows" in message, message
    assert corruption.sample in message, message


def assert_nothing_downstream_recorded(instance) -> None:
    for name in DOWNSTREAM:
        assert instance.get_materialized_partitions(dg.AssetKey(name)) == set(), name
    statuses = [run.status for run in instance.get_runs()]
    assert dg.DagsterRunStatus.FAILURE in statuses


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, WEEK, seed=3)


@pytest.fixture(scope="module")
def forecasted(landing, tmp_path_factory, fast_forecast, fast_window) -> Path:
    """A lake in which WEEK was forecast from good drops."""
    root = tmp_path_factory.mktemp("forecasted") / "lake"
    shutil.copytree(landing, root)
    with dg.instance_for_test() as instance:
        launch.forecast_week(WEEK, str(root), instance, fast_forecast, fast_window, report=None)
    return root


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.name.replace(" ", "_"))
def test_a_bad_drop_fails_the_run_naming_file_column_and_rows_and_writes_nothing_downstream(
    corruption, landing, lake_copy, instance, digests, fast_forecast, fast_window
):
    root = lake_copy(landing)
    path = corrupt(root, corruption)
    landing_before = digests(root / "landing")

    message = run_week(root, instance, fast_forecast, fast_window)

    assert_names_file_column_and_rows(message, path, corruption)
    lake = Lake(str(root))
    assert WEEK not in lake.partitions("sales_history", "week")
    for name in DOWNSTREAM:
        assert not (root / name).exists(), f"{name} was written"
    assert_nothing_downstream_recorded(instance)
    assert digests(root / "landing") == landing_before


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.name.replace(" ", "_"))
def test_a_bad_redrop_leaves_the_earlier_forecast_of_the_week_byte_for_byte_unchanged(
    corruption, forecasted, lake_copy, instance, digests, fast_forecast, fast_window
):
    root = lake_copy(forecasted)
    path = corrupt(root, corruption)
    landing_before = digests(root / "landing")
    derived_before = {name: digests(root / name) for name in ("sales_history", *DOWNSTREAM)}
    assert derived_before["demand_forecast"], "the earlier forecast is missing"

    message = run_week(root, instance, fast_forecast, fast_window)

    assert_names_file_column_and_rows(message, path, corruption)
    assert {name: digests(root / name) for name in derived_before} == derived_before
    assert_nothing_downstream_recorded(instance)
    assert digests(root / "landing") == landing_before


def test_the_duplicate_keys_error_lists_both_files_of_the_drop(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    root = lake_copy(landing)
    corruption = next(c for c in CORRUPTIONS if c.name == "duplicate keys")
    extra = corrupt(root, corruption)
    good = pd.read_parquet(drop_folder(root) / "part-0.parquet")

    message = run_week(root, instance, fast_forecast, fast_window)

    assert str(extra) in message
    assert str(drop_folder(root) / "part-0.parquet") in message
    assert good["article_id"].iloc[5] in message


def test_a_history_week_that_failed_once_and_was_fixed_leaves_every_week_recorded_in_dagster(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    """A bad drop in the middle of the window fails the range run after the weeks before it were
    written; once the drop is fixed, the UI must still show every week of the window as
    materialized, not only the weeks from the fixed one on."""
    root = lake_copy(landing)
    bad_week = WEEK - dt.timedelta(weeks=20)
    drop = drop_folder(root, bad_week) / "part-0.parquet"
    good_bytes = drop.read_bytes()
    frame = pd.read_parquet(drop)
    frame.loc[0, "units_sold"] = -1.0
    frame.to_parquet(drop, index=False)

    message = run_week(root, instance, fast_forecast, fast_window)
    assert str(drop) in message

    drop.write_bytes(good_bytes)
    (drop.parent / "_SUCCESS").touch()
    launch.forecast_week(WEEK, str(root), instance, fast_forecast, fast_window, report=None)

    recorded = instance.get_materialized_partitions(dg.AssetKey("sales_history"))
    on_disk = {week.isoformat() for week in Lake(str(root)).partitions("sales_history", "week")}
    assert on_disk == {week.isoformat() for week in WINDOW}
    assert recorded == on_disk, f"{len(on_disk - recorded)} written weeks not recorded in Dagster"
