"""The weekly asset graph on small generated data, on real Dagster instances and real parquet.

One module-scoped materialization (`materialized`) serves the read-only checks; tests that
re-run or change data work on their own copy of a lake.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from weekly_graph import demand_features, demand_forecast, sales_history

from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)  # the origin week W under test
LATER_WEEKS = 6  # drops after W in the generated landing zone
LAST_WEEK = WEEK + dt.timedelta(weeks=LATER_WEEKS)
SKUS, WEEKS = 200, 72
HISTORY_WEEKS = 60
WINDOW = [WEEK - dt.timedelta(weeks=i) for i in reversed(range(HISTORY_WEEKS))]
ASSETS = [sales_history, demand_features, demand_forecast]
FORECAST_COLUMNS = [
    "article_id",
    "merchant_id",
    "week",
    "horizon",
    "forecast",
    "q10",
    "q50",
    "q90",
    "run_id",
]
VALUE_COLUMNS = ["forecast", "q10", "q50", "q90"]


@dataclass
class Materialized:
    root: Path
    instance: dg.DagsterInstance
    history_run_id: str
    forecast_run_id: str


def run_config(fast_forecast: dict, fast_window: dict) -> dict:
    return {
        "ops": {
            "demand_features": {"config": fast_window},
            "demand_forecast": {"config": fast_forecast},
        }
    }


def materialize_history(
    root: Path, instance, first: dt.date, last: dt.date
) -> dg.ExecuteInProcessResult:
    """`sales_history` for the weeks `first .. last` in one run, as a UI range backfill runs it."""
    return dg.materialize(
        [sales_history],
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def materialize_forecast(root: Path, instance, config: dict) -> dg.ExecuteInProcessResult:
    """`demand_features` and `demand_forecast` for WEEK in one run."""
    return dg.materialize(
        ASSETS,
        selection=[demand_features, demand_forecast],
        partition_key=WEEK.isoformat(),
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
        run_config=config,
    )


def values(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns="run_id")


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, LAST_WEEK, seed=7)


@pytest.fixture(scope="module")
def materialized(landing, tmp_path_factory, fast_forecast, fast_window):
    root = tmp_path_factory.mktemp("materialized") / "lake"
    shutil.copytree(landing, root)
    with dg.instance_for_test() as instance:
        history = materialize_history(root, instance, WINDOW[0], WEEK)
        forecast = materialize_forecast(root, instance, run_config(fast_forecast, fast_window))
        assert history.success and forecast.success
        yield Materialized(root, instance, history.run_id, forecast.run_id)


@pytest.fixture(scope="module")
def forecast(materialized, forecast_of) -> pd.DataFrame:
    return forecast_of(materialized.root, WEEK)


# ---- the forecast table ----


def test_forecast_has_exactly_h_rows_for_every_active_sku(
    materialized, forecast, active_skus_of, fast_forecast
):
    horizon = fast_forecast["horizon"]
    expected = active_skus_of(materialized.root, WEEK)
    rows_per_sku = forecast.groupby(["article_id", "merchant_id"]).size()
    assert set(rows_per_sku.index) == expected
    assert (rows_per_sku == horizon).all()
    assert len(forecast) == horizon * len(expected)


def test_forecast_covers_the_h_weeks_after_the_origin_week(forecast, fast_forecast):
    horizon = fast_forecast["horizon"]
    targets = pd.to_datetime(forecast["week"]).dt.date
    expected = forecast["horizon"].map(lambda h: WEEK + dt.timedelta(weeks=int(h)))
    assert (targets == expected).all()
    assert sorted(forecast["horizon"].unique()) == list(range(1, horizon + 1))


def test_forecast_has_the_documented_columns(forecast):
    assert list(forecast.columns) == FORECAST_COLUMNS


def test_forecast_quantiles_are_ordered(forecast):
    assert (forecast["q10"] <= forecast["q50"]).all()
    assert (forecast["q50"] <= forecast["q90"]).all()


def test_quantiles_describe_the_same_sku_as_the_point_forecast(forecast):
    # Quantile scores joined to the wrong SKUs would not rank SKUs like the point forecast does.
    assert forecast["forecast"].corr(forecast["q50"], method="spearman") > 0.5
    assert forecast["forecast"].corr(forecast["q90"], method="spearman") > 0.5


def test_forecast_has_no_nan_and_no_negative_values(forecast):
    assert not forecast.isna().any().any()
    numbers = forecast[VALUE_COLUMNS].to_numpy()
    assert np.isfinite(numbers).all()
    assert (numbers >= 0).all()


def test_forecast_is_not_all_zero(forecast):
    assert forecast["forecast"].sum() > 0
    assert (forecast["q90"] > forecast["q10"]).any()


def test_every_forecast_row_carries_the_id_of_the_run_that_wrote_it(materialized, forecast):
    assert set(forecast["run_id"]) == {materialized.forecast_run_id}
    run = materialized.instance.get_run_by_id(materialized.forecast_run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS


def test_forecast_partition_reads_as_a_hive_dataset_with_the_origin_week(
    materialized, forecast, hive_dataset
):
    files = list((materialized.root / "demand_forecast").rglob("*.parquet"))
    assert [f.relative_to(materialized.root).as_posix() for f in files] == [
        f"demand_forecast/forecast_week={WEEK}/part-0.parquet"
    ]
    table = hive_dataset(materialized.root, "demand_forecast")
    assert set(table.columns) == {*FORECAST_COLUMNS, "forecast_week"}
    assert set(table["forecast_week"].astype(str)) == {WEEK.isoformat()}
    assert len(table) == len(forecast)


# ---- what Dagster records ----


def test_history_and_forecast_runs_appear_in_the_instance(materialized):
    runs = materialized.instance.get_runs()
    assert {run.run_id for run in runs} == {
        materialized.history_run_id,
        materialized.forecast_run_id,
    }
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    forecast_run = materialized.instance.get_run_by_id(materialized.forecast_run_id)
    assert forecast_run.tags["dagster/partition"] == WEEK.isoformat()


def test_every_history_week_of_the_window_is_recorded_as_materialized(materialized):
    recorded = materialized.instance.get_materialized_partitions(dg.AssetKey("sales_history"))
    assert recorded == {week.isoformat() for week in WINDOW}


def test_features_and_forecast_are_recorded_for_the_origin_week(materialized):
    for name in ("demand_features", "demand_forecast"):
        recorded = materialized.instance.get_materialized_partitions(dg.AssetKey(name))
        assert recorded == {WEEK.isoformat()}, name


def latest_metadata(instance, name: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    assert event is not None, f"no materialization of {name}"
    return event.asset_materialization.metadata


def test_history_metadata_reports_rows_seconds_memory_and_a_preview(materialized):
    meta = latest_metadata(materialized.instance, "sales_history")
    landing_rows = sum(
        len(pd.read_parquet(materialized.root / f"landing/sales/week={week}/part-0.parquet"))
        for week in WINDOW
    )
    assert meta["weeks"].value == HISTORY_WEEKS
    assert meta["rows"].value == landing_rows
    assert meta["skus_last_week"].value > 0
    assert meta["seconds"].value >= 0
    assert meta["peak_memory_mb"].value > 0
    assert isinstance(meta["preview_last_week"], dg.MarkdownMetadataValue)
    assert "units_sold" in meta["preview_last_week"].value


def test_features_metadata_reports_row_and_sku_counts_seconds_memory_and_a_preview(
    materialized, active_skus_of
):
    meta = latest_metadata(materialized.instance, "demand_features")
    features = Lake(str(materialized.root)).read_partition("demand_features", "forecast_week", WEEK)
    assert meta["rows"].value == len(features)
    assert meta["skus"].value == features["sku"].nunique()
    assert meta["active_skus"].value == len(active_skus_of(materialized.root, WEEK))
    assert meta["weeks_of_history"].value == HISTORY_WEEKS
    assert meta["seconds"].value >= 0
    assert meta["peak_memory_mb"].value > 0
    assert isinstance(meta["preview"], dg.MarkdownMetadataValue)
    assert "demand" in meta["preview"].value


def test_forecast_metadata_reports_counts_seconds_memory_parameters_and_a_preview(
    materialized, forecast, fast_forecast
):
    meta = latest_metadata(materialized.instance, "demand_forecast")
    assert meta["rows"].value == len(forecast)
    assert meta["skus_scored"].value == forecast.groupby(["article_id", "merchant_id"]).ngroups
    assert meta["skus_trained"].value >= meta["skus_scored"].value
    assert meta["train_rows"].value > 0
    assert meta["horizon"].value == fast_forecast["horizon"]
    for stage in ("read", "fit", "predict", "write"):
        assert meta[f"seconds_{stage}"].value >= 0
    assert meta["peak_memory_mb"].value > 0
    assert meta["lgbm_params"].value["n_estimators"] == fast_forecast["n_estimators"]
    assert isinstance(meta["top_features"], dg.MarkdownMetadataValue)
    assert isinstance(meta["preview"], dg.TableMetadataValue)
    assert "q50" in {column.name for column in meta["preview"].schema.columns}
    assert meta["path"].value.endswith(f"demand_forecast/forecast_week={WEEK}/part-0.parquet")


# ---- re-runs, determinism, look-ahead ----


def test_materializing_the_same_week_from_scratch_gives_the_same_forecast(
    landing, lake_copy, instance, forecast, forecast_of, fast_forecast, fast_window
):
    root = lake_copy(landing)
    outcome = launch.forecast_week(
        WEEK, str(root), instance, fast_forecast, fast_window, report=None
    )
    again = forecast_of(root, WEEK)
    pd.testing.assert_frame_equal(values(again), values(forecast))
    assert set(again["run_id"]) == {outcome.run_ids[-1]}
    assert outcome.run_ids[-1] != forecast["run_id"].iloc[0]


def test_rerunning_a_week_replaces_its_partition_without_duplicates_or_temp_files(
    materialized, lake_copy, instance, forecast, forecast_of, fast_forecast, fast_window
):
    root = lake_copy(materialized.root)
    lake = Lake(str(root))
    features_before = lake.partition_layout("demand_features", "forecast_week", WEEK)[1]
    result = materialize_forecast(root, instance, run_config(fast_forecast, fast_window))
    assert result.success
    folder = root / "demand_forecast" / f"forecast_week={WEEK}"
    data = [p.name for p in folder.iterdir() if p.suffix != ".png"]  # pictures beside it
    assert sorted(data) == ["part-0.parquet"]
    # The features are written in parts: the manifest names the new version's parts only.
    folder = root / "demand_features" / f"forecast_week={WEEK}"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "_parts"]
    features = lake.read_partition("demand_features", "forecast_week", WEEK)
    assert len(features) == features_before
    assert not features.duplicated(["sku", "week"]).any()
    again = forecast_of(root, WEEK)
    assert len(again) == len(forecast)
    assert set(again["run_id"]) == {result.run_id}
    pd.testing.assert_frame_equal(values(again), values(forecast))


def change_drop(root: Path, week: dt.date, scale: float, new_sku: str) -> None:
    """Re-drops `week` with other sales and one new SKU: new files, then a fresh marker."""
    folder = root / "landing" / "sales" / f"week={week}"
    folder.mkdir(parents=True, exist_ok=True)
    source = root / "landing" / "sales" / f"week={WEEK}" / "part-0.parquet"
    drop = folder / "part-0.parquet"
    frame = pd.read_parquet(drop if drop.exists() else source)
    frame["week"] = week
    frame["units_sold"] = (frame["units_sold"] * scale).round()
    extra = frame.head(1).assign(article_id=new_sku, merchant_id="M999", units_sold=500.0)
    pd.concat([frame, extra], ignore_index=True).to_parquet(drop, index=False)
    (folder / "_SUCCESS").touch()


def test_later_sales_do_not_change_the_forecast(
    materialized, lake_copy, instance, forecast, forecast_of, fast_forecast, fast_window
):
    root = lake_copy(materialized.root)
    lake = Lake(str(root))
    features_before = lake.read_partition("demand_features", "forecast_week", WEEK)
    later = [WEEK + dt.timedelta(weeks=i) for i in range(1, LATER_WEEKS + 2)]
    for i, week in enumerate(later):  # the last one is a brand-new drop
        change_drop(root, week, scale=10.0 + i, new_sku=f"ANEW{i:03d}")

    # The later weeks reach sales_history (and a later origin is forecast) ...
    launch.forecast_week(later[-1], str(root), instance, fast_forecast, fast_window, report=None)
    assert set(later) <= set(lake.partitions("sales_history", "week"))
    # ... and W is materialized again with all of that in the lake.
    outcome = launch.forecast_week(
        WEEK, str(root), instance, fast_forecast, fast_window, report=None
    )

    # Only weeks this instance had not recorded yet are validated again, none of them after W.
    history_runs = [instance.get_run_by_id(run_id) for run_id in outcome.run_ids[:-1]]
    assert all(
        run.tags["dagster/asset_partition_range_end"] <= WEEK.isoformat() for run in history_runs
    )
    features_after = lake.read_partition("demand_features", "forecast_week", WEEK)
    pd.testing.assert_frame_equal(features_after, features_before)
    again = forecast_of(root, WEEK)
    pd.testing.assert_frame_equal(values(again), values(forecast))
    assert set(again["run_id"]) == {outcome.run_ids[-1]}


# ---- forecast_week: only stale history is validated again ----


def redrop(root: Path, week: dt.date) -> None:
    """Rewrites the week's files with one changed value, then touches the marker (newer mtime)."""
    folder = root / "landing" / "sales" / f"week={week}"
    frame = pd.read_parquet(folder / "part-0.parquet")
    frame.loc[0, "units_sold"] = 4242.0
    frame.to_parquet(folder / "part-0.parquet", index=False)
    (folder / "_SUCCESS").touch()


def test_forecast_week_validates_only_history_weeks_that_are_new_or_dropped_again(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    root = lake_copy(landing)
    lake = Lake(str(root))

    first = launch.forecast_week(WEEK, str(root), instance, fast_forecast, fast_window, report=None)
    assert first.history_weeks_validated == HISTORY_WEEKS
    assert len(first.run_ids) == 2
    assert launch.history_runs_needed(lake, WEEK, HISTORY_WEEKS) == []

    second = launch.forecast_week(
        WEEK, str(root), instance, fast_forecast, fast_window, report=None
    )
    assert second.history_weeks_validated == 0
    assert len(second.run_ids) == 1

    redropped = [WEEK - dt.timedelta(weeks=10), WEEK - dt.timedelta(weeks=9)]
    for week in redropped:
        redrop(root, week)
    assert launch.history_runs_needed(lake, WEEK, HISTORY_WEEKS) == [tuple(redropped)]

    third = launch.forecast_week(WEEK, str(root), instance, fast_forecast, fast_window, report=None)
    assert third.history_weeks_validated == 2
    range_run = instance.get_run_by_id(third.run_ids[0])
    assert range_run.tags[launch.RANGE_START_TAG] == redropped[0].isoformat()
    assert range_run.tags[launch.RANGE_END_TAG] == redropped[1].isoformat()
    history = lake.read_partition("sales_history", "week", redropped[0])
    assert 4242.0 in set(history["units_sold"])
    assert launch.history_runs_needed(lake, WEEK, HISTORY_WEEKS) == []

    runs = instance.get_runs()
    assert len(runs) == 5
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
