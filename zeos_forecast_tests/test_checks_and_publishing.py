"""Asset checks and publishing on small generated data, real Dagster instances and real parquet.

`published` runs the history (a range run, as the CLI and UI backfills do) and then features,
forecast, forecast checks and `published_forecast` for WEEK. `failed_next_week` forecasts the week
after on a copy of that lake with a sanity band too tight to pass, so its blocking check fails.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from weekly_graph import (
    demand_features,
    demand_forecast,
    demand_forecast_checks,
    published_forecast,
    sales_history,
    sales_history_checks,
)

from zeos_forecast.pipeline.checks import FORECAST_CHECKS, SALES_HISTORY_CHECKS
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
NEXT_WEEK = WEEK + dt.timedelta(weeks=1)
SKUS, WEEKS = 150, 64
HISTORY_WEEKS = 60  # the `fast_window` fixture's
HISTORY = [NEXT_WEEK - dt.timedelta(weeks=i) for i in reversed(range(HISTORY_WEEKS + 1))]
ASSETS = [sales_history, demand_features, demand_forecast, published_forecast]
CHECKS = [sales_history_checks, demand_forecast_checks]
FORECAST_RUN = [demand_features, demand_forecast, demand_forecast_checks, published_forecast]
WEEK_FILE = f"published_forecast/forecast_week={WEEK}/part-0.parquet"
LATEST_FILE = "published_forecast_latest/part-0.parquet"
# Far tighter than any real forecast keeps to: the honest way to make the sanity band fail.
TIGHT_BAND = {"min_naive_ratio": 0.999, "max_naive_ratio": 1.001}


@dataclass
class Materialized:
    root: Path
    instance: dg.DagsterInstance
    history: dg.ExecuteInProcessResult
    forecast: dg.ExecuteInProcessResult


def run_history(root: Path, instance, first: dt.date, last: dt.date) -> dg.ExecuteInProcessResult:
    """`sales_history` and its checks for `first .. last` in one run, as a range backfill runs."""
    return dg.materialize(
        [*ASSETS, *CHECKS],
        selection=[sales_history, sales_history_checks],
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def run_forecast(
    root: Path, instance, week: dt.date, config: dict, selection=None
) -> dg.ExecuteInProcessResult:
    """Features, forecast, its blocking checks and publishing for `week` in one run."""
    return dg.materialize(
        [*ASSETS, *CHECKS],
        selection=selection or FORECAST_RUN,
        partition_key=week.isoformat(),
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
        run_config=config,
        raise_on_error=False,
    )


def forecast_config(fast_forecast: dict, fast_window: dict, checks: dict | None = None) -> dict:
    ops = {
        "demand_features": {"config": fast_window},
        "demand_forecast": {"config": fast_forecast},
    }
    if checks:
        ops["demand_forecast_checks"] = {"config": checks}
    return {"ops": ops}


def evaluations(
    result: dg.ExecuteInProcessResult,
) -> dict[tuple[str, str | None], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def read(root: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(root / relative)


def by_sku(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["article_id", "merchant_id", "horizon"], ignore_index=True)


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, NEXT_WEEK, seed=7)


@pytest.fixture(scope="module")
def published(landing, tmp_path_factory, fast_forecast, fast_window):
    root = tmp_path_factory.mktemp("published") / "lake"
    shutil.copytree(landing, root)
    with dg.instance_for_test() as instance:
        history = run_history(root, instance, HISTORY[0], HISTORY[-1])
        forecast = run_forecast(root, instance, WEEK, forecast_config(fast_forecast, fast_window))
        assert history.success and forecast.success
        yield Materialized(root, instance, history, forecast)


@pytest.fixture(scope="module")
def failed_next_week(published, tmp_path_factory, fast_forecast, fast_window, digests):
    """NEXT_WEEK forecast with a sanity band it cannot pass, on a copy of the published lake."""
    root = tmp_path_factory.mktemp("failed") / "lake"
    shutil.copytree(published.root, root)
    before = digests(root)
    with dg.instance_for_test() as instance:
        config = forecast_config(fast_forecast, fast_window, checks=TIGHT_BAND)
        result = run_forecast(root, instance, NEXT_WEEK, config)
        yield root, instance, result, before


# ---- sales_history checks ----


def test_history_checks_report_every_check_for_every_week_of_a_range_run(published):
    found = evaluations(published.history)
    assert set(found) == {(name, w.isoformat()) for name in SALES_HISTORY_CHECKS for w in HISTORY}


def test_history_checks_leave_no_week_planned_but_unevaluated_in_the_instance(published):
    for name in SALES_HISTORY_CHECKS:
        key = dg.AssetCheckKey(sales_history.key, name)
        records = published.instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1000
        )
        assert {r.partition for r in records} == {w.isoformat() for w in HISTORY}, name
        assert {r.status.value for r in records} <= {"SUCCEEDED", "FAILED"}, name


def test_history_checks_log_their_progress_over_the_weeks_of_the_run(published):
    logs = published.instance.all_logs(published.history.run_id)
    lines = [e.user_message for e in logs if e.user_message.startswith("checking weekly sales:")]
    assert lines, "no progress line"
    assert lines[-1].startswith(f"checking weekly sales: {len(HISTORY)}/{len(HISTORY)} weeks")
    assert all("weeks/" in line and "ETA" in line for line in lines)


def test_schema_keys_values_and_missing_weeks_pass_on_every_generated_week(published):
    found = evaluations(published.history)
    for name in ("schema_valid", "skus_unique", "values_valid", "weeks_complete"):
        failed = [w for (check, w), e in found.items() if check == name and not e.passed]
        assert failed == [], name


def test_a_week_broken_in_the_lake_fails_its_own_checks_and_no_other_weeks(published, tmp_path):
    # Weeks are read and checked two at a time: a duplicated SKU and a negative unit in one week
    # of the range fail that week's rules, reported with its partition, and every week in order.
    root = tmp_path / "lake"
    shutil.copytree(published.root, root)
    broken = HISTORY[-6]
    path = root / "sales_history" / f"week={broken}" / "part-0.parquet"
    frame = pd.read_parquet(path)
    frame.loc[1, "units_sold"] = -2.0
    pd.concat([frame.iloc[:1], frame], ignore_index=True).to_parquet(path, index=False)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ASSETS, *CHECKS],
            selection=dg.AssetSelection.checks(sales_history_checks),
            resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": HISTORY[-10].isoformat(),
                "dagster/asset_partition_range_end": HISTORY[-1].isoformat(),
            },
        )

    reported = [(e.partition, e.check_name) for e in result.get_asset_check_evaluations()]
    assert reported == [(w.isoformat(), n) for w in HISTORY[-10:] for n in SALES_HISTORY_CHECKS]
    failed = {(w, n) for (n, w), e in evaluations(result).items() if not e.passed}
    assert {(broken.isoformat(), "skus_unique"), (broken.isoformat(), "values_valid")} <= failed
    assert {n for w, n in failed if w != broken.isoformat()} <= {"volume_stable", "skus_retained"}


def test_history_warnings_have_warn_severity_and_carry_their_numbers(published):
    found = evaluations(published.history)
    landing_units = read(published.root, f"landing/sales/week={WEEK}/part-0.parquet")["units_sold"]
    drift = found[("volume_stable", WEEK.isoformat())]
    assert drift.severity == dg.AssetCheckSeverity.WARN
    assert drift.metadata["units"].value == pytest.approx(float(landing_units.sum()))
    assert drift.metadata["previous_weeks"].value == 4
    assert drift.metadata["ratio"].value == pytest.approx(
        drift.metadata["units"].value / drift.metadata["previous_mean"].value, rel=1e-3
    )
    share = found[("skus_retained", WEEK.isoformat())]
    assert share.severity == dg.AssetCheckSeverity.WARN
    assert share.passed
    assert 0.8 <= share.metadata["share"].value <= 1.0
    assert found[("weeks_complete", HISTORY[0].isoformat())].metadata["weeks_present"].value == 1


def test_history_checks_are_not_blocking(published):
    assert not any(e.blocking for e in published.history.get_asset_check_evaluations())


# ---- demand_forecast checks on a good run ----


def test_forecast_checks_pass_on_a_good_run_and_are_blocking(published):
    found = evaluations(published.forecast)
    assert set(found) == {(name, WEEK.isoformat()) for name in FORECAST_CHECKS}
    for evaluation in found.values():
        assert evaluation.passed, evaluation.description
        assert evaluation.blocking
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR


def test_forecast_checks_report_coverage_and_the_naive_ratio(
    published, active_skus_of, fast_forecast, forecast_of
):
    found = evaluations(published.forecast)
    coverage = found[("covers_active_skus", WEEK.isoformat())].metadata
    active = len(active_skus_of(published.root, WEEK))
    assert coverage["active_skus"].value == active
    assert coverage["horizon"].value == fast_forecast["horizon"]
    assert coverage["horizon_source"].value == "demand_forecast metadata"
    assert coverage["rows"].value == len(forecast_of(published.root, WEEK))
    band = found[("within_naive_band", WEEK.isoformat())].metadata
    assert band["naive_level"].value > 0
    assert 0.2 <= band["lowest_ratio"].value <= band["highest_ratio"].value <= 5.0
    assert "ratio_to_naive" in band["sample"].value


def test_forecast_check_results_are_recorded_in_the_instance_with_their_metadata(published):
    for name in FORECAST_CHECKS:
        key = dg.AssetCheckKey(demand_forecast.key, name)
        record = published.instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1
        )[0]
        assert record.status.value == "SUCCEEDED", name
        assert record.partition == WEEK.isoformat()
        assert record.run_id == published.forecast.run_id
        assert record.evaluation.metadata, name


# ---- publishing ----


def test_publishing_writes_the_week_and_latest_from_the_checked_forecast(published, forecast_of):
    forecast = forecast_of(published.root, WEEK)
    week = by_sku(read(published.root, WEEK_FILE))
    latest = by_sku(read(published.root, LATEST_FILE))
    pd.testing.assert_frame_equal(week, forecast)
    pd.testing.assert_frame_equal(latest.drop(columns="forecast_week"), forecast)
    assert set(latest["forecast_week"]) == {WEEK}
    folders = [published.root / WEEK_FILE, published.root / LATEST_FILE]
    for folder in (f.parent for f in folders):
        assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]


def test_publishing_reports_rows_skus_paths_and_a_preview(published):
    [materialization] = published.forecast.asset_materializations_for_node("published_forecast")
    meta = materialization.metadata
    published_rows = read(published.root, WEEK_FILE)
    assert meta["rows"].value == len(published_rows)
    assert meta["skus"].value == published_rows.groupby(["article_id", "merchant_id"]).ngroups
    assert meta["forecast_week"].value == WEEK.isoformat()
    assert meta["latest_week"].value == WEEK.isoformat()
    assert meta["path"].value.endswith(WEEK_FILE)
    assert meta["latest_path"].value.endswith(LATEST_FILE)
    assert meta["forecast_run_id"].value == published.forecast.run_id
    assert "q50" in meta["preview"].value


def test_publishing_an_older_week_keeps_the_newer_week_as_latest(
    published, lake_copy, instance, fast_forecast, fast_window, digests
):
    root = lake_copy(published.root)
    latest_before = digests(root)[LATEST_FILE]
    older = WEEK - dt.timedelta(weeks=1)
    result = run_forecast(root, instance, older, forecast_config(fast_forecast, fast_window))
    assert result.success
    assert (root / f"published_forecast/forecast_week={older}/part-0.parquet").exists()
    assert digests(root)[LATEST_FILE] == latest_before
    [materialization] = result.asset_materializations_for_node("published_forecast")
    assert materialization.metadata["latest_path"].value == f"not replaced: {WEEK} is newer"
    # Its checks passed in this instance, so publishing it again on its own is allowed.
    again = run_forecast(root, instance, older, {}, selection=[published_forecast])
    assert again.success
    assert digests(root)[LATEST_FILE] == latest_before


def test_publishing_never_moves_latest_back_even_when_the_newer_week_was_not_listed(
    published, lake_copy, instance, fast_forecast, fast_window, digests
):
    # As when another run wrote the newer week's latest file after this run listed the weeks:
    # the latest file holds WEEK, the published weeks seen do not.
    root = lake_copy(published.root)
    shutil.rmtree(root / f"published_forecast/forecast_week={WEEK}")
    latest_before = digests(root)[LATEST_FILE]
    older = WEEK - dt.timedelta(weeks=1)

    result = run_forecast(root, instance, older, forecast_config(fast_forecast, fast_window))

    assert result.success
    assert (root / f"published_forecast/forecast_week={older}/part-0.parquet").exists()
    assert digests(root)[LATEST_FILE] == latest_before
    [materialization] = result.asset_materializations_for_node("published_forecast")
    assert materialization.metadata["latest_path"].value == f"not replaced: {WEEK} is newer"


def test_publishing_on_its_own_refuses_a_forecast_this_instance_never_checked(
    published, lake_copy, instance, digests
):
    root = lake_copy(published.root)
    before = digests(root)
    result = run_forecast(root, instance, WEEK, {}, selection=[published_forecast])
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "no recorded materialization" in failure.step_failure_data.user_failure_data.description
    assert digests(root) == before


# ---- a failing blocking check ----


def test_a_failing_blocking_check_stops_publishing_and_the_run(failed_next_week):
    root, _, result, _ = failed_next_week
    assert not result.success
    assert [e.step_key for e in result.get_step_failure_events()] == ["demand_forecast_checks"]
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {demand_features.key, demand_forecast.key}
    # The forecast itself was written; it just never reached the published table.
    assert (root / f"demand_forecast/forecast_week={NEXT_WEEK}").exists()
    assert not (root / f"published_forecast/forecast_week={NEXT_WEEK}").exists()


def test_a_failing_blocking_check_leaves_the_published_forecast_byte_for_byte(
    failed_next_week, digests
):
    root, _, _, before = failed_next_week
    after = digests(root)
    published = {p for p in before if p.startswith(("published_forecast/", LATEST_FILE))}
    assert published == {WEEK_FILE, LATEST_FILE}
    assert {p: after[p] for p in published} == {p: before[p] for p in published}
    assert {p for p in after if p.startswith("published_forecast")} == published


def test_the_failed_check_is_recorded_with_the_ratio_that_broke_the_band(failed_next_week):
    _, instance, result, _ = failed_next_week
    failed = evaluations(result)[("within_naive_band", NEXT_WEEK.isoformat())]
    assert not failed.passed
    assert failed.blocking and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["band_max"].value == TIGHT_BAND["max_naive_ratio"]
    assert failed.metadata["horizons_outside"].value > 0
    key = dg.AssetCheckKey(demand_forecast.key, "within_naive_band")
    [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
    assert record.status.value == "FAILED"
    assert record.partition == NEXT_WEEK.isoformat()
    assert record.evaluation.metadata["lowest_ratio"] == failed.metadata["lowest_ratio"]
    others = evaluations(result)
    assert all(
        others[(name, NEXT_WEEK.isoformat())].passed
        for name in FORECAST_CHECKS
        if name != "within_naive_band"
    )


def test_publishing_on_its_own_refuses_a_forecast_whose_check_failed(failed_next_week, digests):
    root, instance, _, before = failed_next_week
    result = run_forecast(root, instance, NEXT_WEEK, {}, selection=[published_forecast])
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "published_forecast"
    message = failure.step_failure_data.user_failure_data.description
    assert "within_naive_band: failed" in message
    assert not (root / f"published_forecast/forecast_week={NEXT_WEEK}").exists()
    assert digests(root)[LATEST_FILE] == before[LATEST_FILE]
