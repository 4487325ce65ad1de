"""The `zeos-forecast` command line: generate, forecast and demo, through the real Dagster path."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from zeos_forecast.cli import main
from zeos_forecast.demo import latest_complete_week

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS = 150, 60
HORIZON = 4
# The console script of the environment running the tests (a clone's own .venv in CI).
CONSOLE_SCRIPT = Path(sys.executable).with_name("zeos-forecast")
FORECAST_FLAGS = ["--n-estimators", "15", "--history-weeks", "60", "--horizon", str(HORIZON)]


def forecast_args(root: Path, week: dt.date = WEEK) -> list[str]:
    return ["forecast", "--lake", str(root), "--week", week.isoformat(), *FORECAST_FLAGS]


def runs_under(home: Path) -> list:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


def materialized_under(home: Path, name: str) -> set[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_materialized_partitions(dg.AssetKey(name))


def rows_per_sku(table: pd.DataFrame) -> pd.Series:
    return table.groupby(["article_id", "merchant_id"]).size()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, int, str]:
    """`zeos-forecast generate` into a fresh lake: (lake, exit code, stdout)."""
    root = tmp_path_factory.mktemp("generated") / "lake"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "generate",
                "--skus",
                str(SKUS),
                "--weeks",
                str(WEEKS),
                "--lake",
                str(root),
                "--last-week",
                WEEK.isoformat(),
            ]
        )
    return root, code, out.getvalue()


# ---- generate ----


def test_generate_writes_one_complete_drop_per_week(generated):
    root, code, output = generated
    assert code == 0
    folders = sorted((root / "landing" / "sales").iterdir())
    expected = [WEEK - dt.timedelta(weeks=i) for i in reversed(range(WEEKS))]
    assert [f.name for f in folders] == [f"week={week}" for week in expected]
    for folder in folders:
        assert (folder / "_SUCCESS").is_file(), folder
        assert list(folder.glob("*.parquet")), folder
    assert f"{SKUS:,} SKUs x {WEEKS} weeks ending {WEEK}" in output


def test_generate_writes_drops_in_the_landing_contract(generated):
    root = generated[0]
    drop = pd.read_parquet(root / "landing" / "sales" / f"week={WEEK}")
    assert {"article_id", "merchant_id", "week", "units_sold"} <= set(drop.columns)
    assert (pd.to_datetime(drop["week"]).dt.date == WEEK).all()
    assert (drop["units_sold"] >= 0).all()
    assert not drop.duplicated(["article_id", "merchant_id"]).any()


def test_generate_writes_article_and_merchant_metadata_for_every_sku(generated):
    root = generated[0]
    articles = pd.read_parquet(root / "landing" / "articles")
    merchants = pd.read_parquet(root / "landing" / "merchants")
    assert {"article_id", "category", "brand"} <= set(articles.columns)
    assert {"merchant_id", "store_format"} <= set(merchants.columns)
    sales = pd.concat(
        pd.read_parquet(file, columns=["article_id", "merchant_id"])
        for file in (root / "landing" / "sales").glob("week=*/*.parquet")
    )
    assert set(sales["article_id"]) <= set(articles["article_id"])
    assert set(sales["merchant_id"]) <= set(merchants["merchant_id"])


# ---- forecast ----


def test_forecast_prints_where_the_table_is_and_writes_h_rows_per_active_sku(
    generated, lake_copy, dagster_home, capsys, forecast_of, active_skus_of
):
    root = lake_copy(generated[0])

    assert main(forecast_args(root)) == 0

    out = capsys.readouterr().out
    location = f"{root}/demand_forecast/forecast_week={WEEK}/"
    assert location in out
    assert (Path(location) / "part-0.parquet").is_file()
    table = forecast_of(root, WEEK)
    counts = rows_per_sku(table)
    assert set(counts.index) == active_skus_of(root, WEEK)
    assert (counts == HORIZON).all()
    runs = runs_under(dagster_home)
    assert len(runs) == 2
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)


def test_forecast_rejects_a_week_that_is_not_a_monday(generated, dagster_home, capsys):
    tuesday = WEEK + dt.timedelta(days=1)
    with pytest.raises(SystemExit) as exit_:
        main(forecast_args(generated[0], tuesday))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--week" in err
    assert "is a Tuesday; weeks are named by their Monday" in err


def test_forecast_of_a_week_without_a_drop_exits_1_with_a_clear_message(
    generated, lake_copy, dagster_home, capsys
):
    root = lake_copy(generated[0])
    missing = WEEK + dt.timedelta(weeks=1)

    assert main(forecast_args(root, missing)) == 1

    captured = capsys.readouterr()
    assert f"No complete sales drop for week {missing}" in captured.err
    assert f"landing/sales/week={missing}/" in captured.err
    assert "Traceback" not in captured.err
    assert not (root / "demand_forecast").exists()
    assert runs_under(dagster_home) == []


def test_forecast_of_drops_older_than_2018_starts_the_partitions_at_the_lakes_first_drop(
    tmp_path, dagster_home, capsys
):
    root = tmp_path / "lake"
    last = dt.date(2018, 3, 5)  # the 30 weeks of history start in 2017
    generate = ["generate", "--skus", "30", "--weeks", "30", "--lake", str(root)]
    assert main([*generate, "--last-week", last.isoformat()]) == 0
    flags = ["--history-weeks", "30", "--n-estimators", "5", "--horizon", "4", "--threads", "1"]

    assert main(["forecast", "--lake", str(root), "--week", last.isoformat(), *flags]) == 0

    assert (root / f"published_forecast/forecast_week={last}/part-0.parquet").exists()
    first_drop = last - dt.timedelta(weeks=29)
    assert materialized_under(dagster_home, "sales_history") >= {first_drop.isoformat()}


# ---- validate, and the forecast's metadata file ----


def test_validate_takes_the_backlog_so_that_the_weekly_run_validates_only_its_new_week(
    generated, lake_copy, dagster_home, capsys, tmp_path
):
    root = lake_copy(generated[0])
    before = WEEK - dt.timedelta(weeks=1)
    validate = ["validate", "--lake", str(root), "--week", before.isoformat()]

    assert main(validate) == 0
    assert f"Validated {WEEKS - 1} weekly drops up to {before} in 1 run." in capsys.readouterr().out
    assert len(materialized_under(dagster_home, "sales_history")) == WEEKS - 1
    assert not (root / "demand_features").exists()
    assert main(validate) == 0
    assert "validated already: nothing to run" in capsys.readouterr().out

    metadata_json = tmp_path / "metadata.json"
    assert main([*forecast_args(root), "--metadata-json", str(metadata_json)]) == 0

    metadata = json.loads(metadata_json.read_text())
    assert metadata["sales_history"]["weeks"] == 1
    assert metadata["demand_forecast"]["train_rows"] > 0
    assert metadata["demand_forecast"]["horizon"] == HORIZON
    assert any("seconds" in key for key in metadata["demand_forecast"])
    # The backlog, then one run that validates the new week and forecasts it.
    assert len(runs_under(dagster_home)) == 2


def test_validate_without_a_drop_up_to_the_week_exits_1_with_a_clear_message(
    generated, dagster_home, capsys
):
    first = WEEK - dt.timedelta(weeks=WEEKS)

    assert main(["validate", "--lake", str(generated[0]), "--week", first.isoformat()]) == 1

    assert f"No complete sales drop up to week {first}" in capsys.readouterr().err
    assert runs_under(dagster_home) == []


# ---- the installed console script ----


def test_the_console_script_forecasts_a_week_with_the_lake_from_zeos_lake(
    generated, lake_copy, tmp_path, forecast_of
):
    root = lake_copy(generated[0])
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "ZEOS_LAKE": str(root)}
    args = ["forecast", "--week", WEEK.isoformat(), *FORECAST_FLAGS, "--threads", "1"]

    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{root}/demand_forecast/forecast_week={WEEK}/" in done.stdout
    assert (rows_per_sku(forecast_of(root, WEEK)) == HORIZON).all()
    assert len(runs_under(home)) == 2


def test_the_console_script_exits_non_zero_with_the_error_on_stderr(generated, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    missing = WEEK + dt.timedelta(weeks=1)
    args = ["forecast", "--lake", str(generated[0]), "--week", missing.isoformat()]

    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 1
    assert f"No complete sales drop for week {missing}" in done.stderr


# ---- demo ----


def test_demo_generates_data_forecasts_the_latest_complete_week_and_prints_a_summary(
    tmp_path, dagster_home, capsys, forecast_of, active_skus_of
):
    root = tmp_path / "lake"
    week = latest_complete_week()

    assert main(["demo", "--skus", "200", "--weeks", "60", "--lake", str(root)]) == 0

    out = capsys.readouterr().out
    assert f"Forecast origin week      {week}" in out
    assert "SKUs                      200 in history" in out
    assert "Training rows" in out
    assert "Seconds per stage:" in out
    assert f"Forecast table            {root}/demand_forecast/forecast_week={week}/" in out
    table = forecast_of(root, week)
    counts = rows_per_sku(table)
    assert set(counts.index) == active_skus_of(root, week)
    assert (counts == 12).all()
    assert f"{len(table):,}" in out
    runs = runs_under(dagster_home)
    assert len(runs) == 2
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert len(materialized_under(dagster_home, "sales_history")) == 60
    for name in ("demand_features", "demand_forecast"):
        assert materialized_under(dagster_home, name) == {week.isoformat()}
