"""Backtests and `forecast_accuracy` through the real assets, on a real Dagster instance."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil

import dagster as dg
import pandas as pd
import pytest

from zeos_forecast.cli import main
from zeos_forecast.core.accuracy import BASELINES, HINDSIGHT, OURS, summarize
from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.backtest import _reference_components, backtest_origins, run_backtest
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

LAST_WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS = 150, 64
FIRST_ORIGIN = LAST_WEEK - dt.timedelta(weeks=5)
LAST_ORIGIN = LAST_WEEK - dt.timedelta(weeks=3)
HORIZON = 3


def weeks_after(week: dt.date, n: int) -> dt.date:
    return week + dt.timedelta(weeks=n)


@pytest.fixture(scope="module")
def landing(landing_factory):
    return landing_factory(SKUS, WEEKS, LAST_WEEK, seed=3)


@pytest.fixture(scope="module")
def backtest(landing, tmp_path_factory, fast_forecast, fast_window):
    """Two origins two weeks apart, three weeks ahead: every covered week has sales."""
    root = tmp_path_factory.mktemp("backtest") / "lake"
    shutil.copytree(landing, root)
    with dg.instance_for_test() as instance:
        result = run_backtest(
            str(root),
            FIRST_ORIGIN,
            LAST_ORIGIN,
            instance,
            every=2,
            forecast_config={**fast_forecast, "horizon": HORIZON},
            window_config=fast_window,
            report=None,
        )
        yield root, result, instance


def test_origins_step_from_the_first_to_the_last_week():
    first = dt.date(2024, 1, 1)

    assert backtest_origins(first, weeks_after(first, 5), 2) == [
        first,
        weeks_after(first, 2),
        weeks_after(first, 4),
    ]
    with pytest.raises(ValueError, match="every"):
        backtest_origins(first, first, 0)


def test_a_backtest_scores_every_week_its_forecasts_covered(backtest):
    root, result, _ = backtest

    assert result.origins == [FIRST_ORIGIN, LAST_ORIGIN]
    assert result.scored_weeks == [weeks_after(FIRST_ORIGIN, h) for h in range(1, 6)]
    scored = Lake(str(root)).partitions("forecast_accuracy", "week")
    assert set(result.scored_weeks) <= set(scored)


def test_the_summary_counts_each_stocked_sku_once_per_origin_horizon_and_model(backtest):
    """Forecast or not: a SKU that sold without a forecast counts as a forecast of zero."""
    root, result, _ = backtest
    lake = Lake(str(root))
    expected = forecast_rows = 0
    for origin in result.origins:
        forecast = lake.read_partition("demand_forecast", "forecast_week", origin)
        for _, row in forecast[["week"]].drop_duplicates().iterrows():
            sales = lake.read_partition("sales_history", "week", row["week"])
            stocked = sales.loc[sales["availability"] >= 1.0, ["article_id", "merchant_id"]]
            rows = forecast.loc[forecast["week"] == row["week"]]
            expected += len(stocked)
            forecast_rows += len(rows.merge(stocked, on=["article_id", "merchant_id"]))

    overall = result.overall.set_index("model")
    assert set(overall.index) == {OURS, *BASELINES}
    assert overall["rows"].eq(expected).all()
    assert forecast_rows < expected  # the generated data has SKUs that start selling later
    assert sorted(result.by_horizon["horizon"].unique()) == [1, 2, 3]


def test_the_hindsight_level_is_scored_on_the_same_sku_weeks_as_ours_without_bias(
    backtest, fast_window
):
    root, result, _ = backtest
    lake = Lake(str(root))
    horizons = set(range(1, HORIZON + 1))

    components = pd.concat(
        _reference_components(HINDSIGHT, lake, origin, HORIZON, horizons, fast_window)
        for origin in result.origins
    )

    hindsight = summarize(components, ["model"]).set_index("model").loc[HINDSIGHT]
    ours = result.overall.set_index("model").loc[OURS]
    assert hindsight["rows"] == ours["rows"]
    assert hindsight["bias"] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < hindsight["wape"] < ours["wape"]


def test_a_backtest_publishes_nothing(backtest):
    root, _, _ = backtest

    assert not (root / "published_forecast").exists()
    assert not (root / "published_forecast_latest").exists()


def test_the_accuracy_metadata_carries_plottable_numbers_per_model(backtest):
    _, _, instance = backtest
    week = weeks_after(FIRST_ORIGIN, 2)

    event = instance.get_latest_materialization_event(dg.AssetKey("forecast_accuracy"))
    assert event is not None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("forecast_accuracy"), asset_partitions=[week.isoformat()]
        ),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    assert metadata["scored_forecasts"].value == 1
    for model in (OURS, *BASELINES):
        assert isinstance(metadata[f"WAPE % ({model})"].value, float)
    assert 0.0 <= metadata["interval coverage % (zeos)"].value <= 100.0


def test_accuracy_of_a_week_without_sales_yet_says_so_and_succeeds(landing, lake_copy, instance):
    root = lake_copy(landing)
    week = weeks_after(LAST_WEEK, -1)

    metadata = launch.materialize_accuracy(week, str(root), instance)

    assert metadata["scored_forecasts"] == 0
    assert "No actuals" in metadata["status"]
    assert not (root / "forecast_accuracy").exists()


def test_the_weekly_run_scores_the_forecast_made_a_week_earlier(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    root = lake_copy(landing)
    earlier = weeks_after(LAST_WEEK, -1)
    launch.forecast_week(earlier, str(root), instance, fast_forecast, fast_window, report=None)

    outcome = launch.forecast_week(
        LAST_WEEK, str(root), instance, fast_forecast, fast_window, report=None
    )

    accuracy = outcome.metadata["forecast_accuracy"]
    assert accuracy["scored_forecasts"] == 1
    assert accuracy["origins"] == f"{earlier} .. {earlier}"
    components = Lake(str(root)).read_partition("forecast_accuracy", "week", LAST_WEEK)
    assert set(components["horizon"]) == {1}
    assert set(components["model"]) == {OURS, *BASELINES}


def test_the_backtest_command_prints_tables_per_horizon_for_ours_the_baselines_and_the_reference(
    landing, lake_copy, dagster_home
):
    root = lake_copy(landing)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "backtest",
                "--lake",
                str(root),
                "--from",
                FIRST_ORIGIN.isoformat(),
                "--to",
                LAST_ORIGIN.isoformat(),
                "--every",
                "2",
                "--reference",
                "tsperf_lightgbm",
                "--reference",
                "hindsight_level",
                "--horizon",
                "2",
                "--n-estimators",
                "10",
                "--history-weeks",
                "60",
                "--threads",
                "1",
            ]
        )

    text = out.getvalue()
    assert code == 0
    assert "Point forecasts per horizon" in text
    for model in (OURS, *BASELINES, "tsperf_lightgbm", "hindsight_level"):
        assert f"| {model}" in text
    assert "coverage_q10" in text and "interval_coverage" in text
    assert "Across the 2 origins" in text and "ours_better_mape" in text
    assert "pinball_q50" in text


def test_a_backtest_whose_weeks_have_no_sales_yet_fails_with_a_clear_message(
    landing, lake_copy, dagster_home, capsys
):
    root = lake_copy(landing)

    code = main(
        ["backtest", "--lake", str(root), "--from", LAST_WEEK.isoformat(), "--to",
         LAST_WEEK.isoformat(), "--n-estimators", "5", "--history-weeks", "60", "--threads", "1"]
    )  # fmt: skip

    assert code == 1
    assert "nothing to score" in capsys.readouterr().err
