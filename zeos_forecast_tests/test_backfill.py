"""`zeos-forecast backfill`: one run per week of the range, every week written once, and a re-run
over weeks that exist replaces their partitions.

A small lake is backfilled over three weeks through the CLI (the real Dagster instance under
`DAGSTER_HOME`), then the last two weeks are backfilled again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from zeos_forecast.cli import main
from zeos_forecast.pipeline.backfill import BACKFILL_TAG

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

LAST = dt.date(2026, 11, 9)
SKUS, WEEKS = 60, 36
FIRST = LAST - dt.timedelta(weeks=2)
RANGE = [FIRST + dt.timedelta(weeks=i) for i in range(3)]
FLAGS = ["--history-weeks", "30", "--n-estimators", "10", "--horizon", "4", "--threads", "1"]
SKU_HORIZON = ["article_id", "merchant_id", "horizon"]
PARTITION = "dagster/partition"


@dataclass
class Backfilled:
    root: Path
    home: Path
    first_output: str
    first_metadata: dict
    first: dict[dt.date, pd.DataFrame]  # forecast partitions after the first backfill
    again: dict[dt.date, pd.DataFrame]  # ... after backfilling the last two weeks again
    runs_after_first: int


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def forecasts(root: Path) -> dict[dt.date, pd.DataFrame]:
    found = {}
    for path in sorted((root / "demand_forecast").glob("forecast_week=*/*.parquet")):
        week = dt.date.fromisoformat(path.parent.name.split("=")[1])
        found[week] = pd.read_parquet(path).sort_values(SKU_HORIZON, ignore_index=True)
    return found


def forecast_runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r for r in instance.get_runs() if "demand_forecast" in _assets(r)]


def _assets(run: dg.DagsterRun) -> set[str]:
    return {key.to_user_string() for key in run.asset_selection or []}


@pytest.fixture(scope="module")
def backfilled(landing_factory, tmp_path_factory) -> Backfilled:
    base = tmp_path_factory.mktemp("backfill")
    root = base / "lake"
    shutil.copytree(landing_factory(SKUS, WEEKS, LAST), root)
    home = base / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    metadata = base / "backfill.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        lake = ["--lake", str(root)]
        code, output, error = cli(
            "backfill", *lake, "--from", str(FIRST), "--to", str(LAST), *FLAGS,
            "--metadata-json", str(metadata),
        )  # fmt: skip
        assert code == 0, error
        first = forecasts(root)
        runs = len(forecast_runs(home))
        again = FIRST + dt.timedelta(weeks=1)
        code, _, error = cli("backfill", *lake, "--from", str(again), "--to", str(LAST), *FLAGS)
        assert code == 0, error
        yield Backfilled(
            root, home, output, json.loads(metadata.read_text()), first, forecasts(root), runs
        )


def test_backfill_forecasts_every_week_of_the_range_in_one_run_per_week(backfilled):
    assert sorted(backfilled.first) == RANGE
    assert backfilled.runs_after_first == len(RANGE)
    for week, table in backfilled.first.items():
        assert pd.to_datetime(table["week"]).min().date() == week + dt.timedelta(weeks=1)
        assert table["run_id"].nunique() == 1
        assert not table.duplicated(SKU_HORIZON).any()
        assert set(table["horizon"]) == {1, 2, 3, 4}


def test_a_cli_backfill_is_one_group_of_runs_under_its_backfill_tag(backfilled):
    with dg.DagsterInstance.from_config(str(backfilled.home)) as instance:
        runs = instance.get_runs()
        ids = {run.tags.get(BACKFILL_TAG) for run in runs}
        assert None not in ids and len(ids) == 2  # the backfill and the one again
        [first_id] = [i for i in ids if i.startswith(f"{FIRST}..{LAST}-")]
        first = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: first_id}))

    forecast_weeks = sorted(
        r.tags["dagster/partition"] for r in first if "dagster/partition" in r.tags
    )
    assert forecast_weeks == [str(week) for week in RANGE]
    assert f"{BACKFILL_TAG}={first_id}" in backfilled.first_output


def test_backfill_publishes_every_week_of_the_range(backfilled):
    published = sorted(p.name for p in (backfilled.root / "published_forecast").iterdir())
    assert published == [f"forecast_week={week}" for week in RANGE]


def test_backfill_prints_progress_for_every_week_then_a_summary(backfilled):
    lines = backfilled.first_output.splitlines()
    progress = [line for line in lines if line.startswith("backfill: ")]
    assert [line.split()[1] for line in progress] == ["1/3", "2/3", "3/3"]
    assert all("weeks/" in line and "ETA" in line for line in progress)
    assert any(line.startswith(f"Backfilled 3 weeks {FIRST} .. {LAST} in ") for line in lines)


def test_backfill_metadata_json_holds_each_weeks_times_runs_and_forecast(backfilled):
    weeks = backfilled.first_metadata
    assert sorted(weeks) == [str(week) for week in RANGE]
    for values in weeks.values():
        assert values["finished"] > values["started"]
        assert values["run_ids"]
        assert values["assets"]["demand_forecast"]["skus_scored"] > 0
    starts = [weeks[str(week)]["started"] for week in RANGE]
    assert starts == sorted(starts)


def test_backfilling_existing_weeks_again_replaces_them_row_for_row(backfilled):
    replaced = RANGE[1:]
    assert sorted(backfilled.again) == RANGE
    for week in replaced:
        before, after = backfilled.first[week], backfilled.again[week]
        assert after["run_id"].nunique() == 1
        assert set(after["run_id"]) != set(before["run_id"])
        pd.testing.assert_frame_equal(before.drop(columns="run_id"), after.drop(columns="run_id"))
    untouched = RANGE[0]
    pd.testing.assert_frame_equal(backfilled.first[untouched], backfilled.again[untouched])
    assert len(forecast_runs(backfilled.home)) == len(RANGE) + len(replaced)


def test_backfill_leaves_no_temporary_file_behind(backfilled):
    derived = [p for p in backfilled.root.iterdir() if p.name != "landing"]
    assert derived
    assert [p for d in derived for p in d.rglob(".*")] == []


def test_a_week_without_a_drop_fails_the_backfill_before_any_run(backfilled, dagster_home):
    missing = LAST + dt.timedelta(weeks=1)

    code, _, error = cli(
        "backfill", "--lake", str(backfilled.root), "--from", str(LAST), "--to", str(missing)
    )

    assert code == 1
    assert f"No complete sales drop under {backfilled.root} for 1 of the 2 weeks" in error
    assert str(missing) in error
    assert forecast_runs(dagster_home) == []


def test_a_range_that_ends_before_it_starts_is_refused(backfilled, dagster_home):
    code, _, error = cli(
        "backfill", "--lake", str(backfilled.root), "--from", str(LAST), "--to", str(FIRST)
    )

    assert code == 1
    assert f"The backfill ends ({FIRST}) before it starts ({LAST})" in error
