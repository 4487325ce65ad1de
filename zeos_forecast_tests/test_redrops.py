"""A week dropped again is validated again exactly when its content changed, whatever its times.

The drops are replaced with real file tools (`cp -a`, an `rsync -a`-like copy, `mv`) from a
staging folder whose files carry old modification times, as a restore from a backup does: the
CLI's run planner (`launch.forecast_week`) and the sensor both see the new content, the history
is validated again and the forecast reads the new sales. The same bytes dropped again are not.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from redrops import OLD_TIME, REDROPS, cp_a, stage
from weekly_graph import landing_sensor, sales_history

from zeos_forecast.drops import IDENTITY_FOOTER_KEY
from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.landing_zone import LocalLandingZone
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
SKUS, WEEKS, HISTORY_WEEKS = 30, 16, 16
REDROPPED = WEEK - dt.timedelta(weeks=3)


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, WEEK, seed=5)


def drop_folder(root: Path, week: dt.date) -> Path:
    return Path(Lake(str(root)).sales_drop_dir(week))


def changed_sales(root: Path, week: dt.date) -> pd.DataFrame:
    """The week's drop with ten times the units of every SKU."""
    frame = pd.read_parquet(drop_folder(root, week) / "part-0.parquet")
    return frame.assign(units_sold=frame["units_sold"] * 10 + 1)


def history_units(root: Path, week: dt.date) -> float:
    return float(Lake(str(root)).read_partition("sales_history", "week", week)["units_sold"].sum())


@pytest.mark.parametrize("tool", list(REDROPS))
def test_a_redrop_with_old_file_times_is_validated_again_by_the_cli(
    tool, landing, lake_copy, tmp_path, instance, fast_forecast
):
    root = lake_copy(landing)
    window = {"history_weeks": HISTORY_WEEKS}
    launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
    before = history_units(root, REDROPPED)
    new = changed_sales(root, REDROPPED)

    REDROPS[tool](stage(tmp_path / "staging", new), drop_folder(root, REDROPPED))

    lake = Lake(str(root))
    assert launch.history_runs_needed(lake, WEEK, HISTORY_WEEKS, instance) == [
        (REDROPPED, REDROPPED)
    ]
    again = launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
    assert again.history_weeks_validated == 1
    assert history_units(root, REDROPPED) == float(new["units_sold"].sum()) != before
    assert launch.history_runs_needed(lake, WEEK, HISTORY_WEEKS, instance) == []


def test_the_same_bytes_dropped_again_are_not_validated_again(
    landing, lake_copy, tmp_path, instance, fast_forecast
):
    root = lake_copy(landing)
    window = {"history_weeks": HISTORY_WEEKS}
    launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
    staging = tmp_path / "staging"  # a backup of the drop: the same bytes, other times
    shutil.copytree(drop_folder(root, REDROPPED), staging)
    for path in staging.iterdir():
        os.utime(path, (OLD_TIME, OLD_TIME))

    cp_a(staging, drop_folder(root, REDROPPED))

    again = launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
    assert again.history_weeks_validated == 0


def test_each_history_partition_records_the_identity_of_the_drop_it_was_made_from(
    landing, lake_copy, instance, fast_forecast
):
    root = lake_copy(landing)
    launch.forecast_week(
        WEEK, str(root), instance, fast_forecast, {"history_weeks": HISTORY_WEEKS}, report=None
    )
    lake = Lake(str(root))
    drops = lake.sales_drops()

    for week in lake.partitions("sales_history", "week"):
        footer = lake.partition_footer("sales_history", "week", week)
        assert footer[IDENTITY_FOOTER_KEY] == drops[week].identity


@pytest.mark.parametrize("tool", list(REDROPS))
def test_a_redrop_with_old_file_times_is_validated_again_by_the_sensor(
    tool, landing, lake_copy, tmp_path, instance
):
    root = lake_copy(landing)
    zone = LocalLandingZone(root=str(root))

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"landing": zone}
        )
        return landing_sensor(context)

    first = tick(None)
    [backlog] = first.run_requests
    result = dg.materialize(
        [sales_history],
        instance=instance,
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        tags={**backlog.tags, "dagster/run_key": backlog.run_key},
    )
    assert result.success
    settled = tick(first.cursor)  # the backlog is validated; the latest week is forecast next
    quiet = tick(settled.cursor)
    assert quiet.run_requests == []

    REDROPS[tool](
        stage(tmp_path / "staging", changed_sales(root, REDROPPED)), drop_folder(root, REDROPPED)
    )

    [request] = tick(quiet.cursor).run_requests  # that week alone, validated and forecast
    assert request.partition_key == REDROPPED.isoformat()
    assert sales_history.key in request.asset_selection
