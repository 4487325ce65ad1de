"""landing_sensor: each drop is validated once, then its week forecast; no flood of runs."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from weekly_graph import (
    demand_features,
    demand_forecast,
    demand_forecast_checks,
    forecast_accuracy,
    landing_sensor,
    published_forecast,
    sales_history,
    sales_history_checks,
)

from zeos_forecast.pipeline.landing_zone import LocalLandingZone
from zeos_forecast.pipeline.launch import forecast_week, validate_drops
from zeos_forecast.pipeline.partitions import week_ranges
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.pipeline.sensors import SensorState
from zeos_forecast.storage import Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

LAST = dt.date(2026, 11, 9)
WEEKS = 30
ASSETS = [sales_history, demand_features, demand_forecast, published_forecast, forecast_accuracy]
CHECKS = [sales_history_checks, demand_forecast_checks]
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def tick(instance, root: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LocalLandingZone(root=str(root))}
    )
    return landing_sensor(context)


def execute(request: dg.RunRequest, root: Path, instance, fast_forecast, fast_window) -> bool:
    """Runs a requested run for real, tagged with its run key as the daemon would."""
    tags = {**(request.tags or {}), "dagster/run_key": request.run_key}
    selection = [k.to_user_string() for k in request.asset_selection]
    run_config = {}
    if "demand_forecast" in selection:
        run_config = {
            "ops": {
                "demand_features": {"config": {"history_weeks": WEEKS}},
                "demand_forecast": {"config": fast_forecast},
            }
        }
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=selection,
        partition_key=request.partition_key,
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        instance=instance,
        tags=tags,
        run_config=run_config,
        raise_on_error=False,
    )
    return result.success


def redrop(root: Path, week: dt.date, units: float | None = None) -> None:
    """Writes the week's drop again: same bytes (and mtimes) unless `units` changes them."""
    folder = Path(Lake(str(root)).sales_drop_dir(week))
    if units is not None:
        data = folder / "part-0.parquet"
        frame = pd.read_parquet(data)
        frame.loc[0, "units_sold"] = units
        frame.to_parquet(data, index=False)
    (folder / "_SUCCESS").touch()


@pytest.fixture
def lake(landing_factory, lake_copy) -> Path:
    return lake_copy(landing_factory(60, WEEKS, LAST))


def test_the_first_tick_validates_the_backlog_in_one_run_and_forecasts_nothing_yet(lake, instance):
    result = tick(instance, lake, None)

    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.asset_selection == [dg.AssetKey("sales_history")]
    first = LAST - dt.timedelta(weeks=WEEKS - 1)
    assert request.tags[RANGE_START] == first.isoformat()
    assert request.tags[RANGE_END] == LAST.isoformat()


def test_only_the_latest_week_is_forecast_once_the_backlog_run_succeeded(
    lake, instance, fast_forecast, fast_window
):
    first = tick(instance, lake, None)
    waiting = tick(instance, lake, first.cursor)
    assert waiting.run_requests == []

    assert execute(first.run_requests[0], lake, instance, fast_forecast, fast_window)
    ready = tick(instance, lake, waiting.cursor)

    assert [r.partition_key for r in ready.run_requests] == [LAST.isoformat()]
    assert {k.to_user_string() for k in ready.run_requests[0].asset_selection} >= {
        "demand_features",
        "demand_forecast",
    }
    assert execute(ready.run_requests[0], lake, instance, fast_forecast, fast_window)
    assert (lake / f"demand_forecast/forecast_week={LAST}/part-0.parquet").exists()
    assert (lake / f"published_forecast/forecast_week={LAST}/part-0.parquet").exists()


def test_a_new_weeks_drop_is_validated_and_forecast_in_one_run(
    lake, instance, fast_forecast, fast_window
):
    state = tick(instance, lake, None)
    assert execute(state.run_requests[0], lake, instance, fast_forecast, fast_window)
    state = tick(instance, lake, state.cursor)  # forecast of LAST requested
    cursor = state.cursor
    new_week = LAST + dt.timedelta(weeks=1)
    landing = Lake(str(lake))
    frame = landing.read_partition("landing/sales", "week", LAST)
    landing.write_landing_drop(new_week, frame.assign(week=new_week))

    planned = tick(instance, lake, cursor)
    [request] = planned.run_requests

    assert request.partition_key == new_week.isoformat()
    assert {k.to_user_string() for k in request.asset_selection} >= {
        "sales_history",
        "demand_features",
        "demand_forecast",
        "published_forecast",
    }
    assert execute(request, lake, instance, fast_forecast, fast_window)
    assert (lake / f"published_forecast/forecast_week={new_week}/part-0.parquet").exists()
    after = tick(instance, lake, planned.cursor)
    assert after.run_requests == []
    assert SensorState.from_cursor(after.cursor).seen[new_week.isoformat()]


def test_weeks_the_cli_validated_are_not_validated_again_when_the_sensor_is_turned_on(
    lake, instance
):
    outcome = validate_drops(LAST, str(lake), instance, report=None)
    assert outcome.history_weeks_validated == WEEKS

    first = tick(instance, lake, None)

    assert first.run_requests == []
    assert len(SensorState.from_cursor(first.cursor).seen) == WEEKS


def test_a_week_the_cli_forecast_is_neither_validated_nor_forecast_again_by_the_sensor(
    lake, instance, fast_forecast
):
    window = {"history_weeks": WEEKS}
    forecast_week(LAST, str(lake), instance, fast_forecast, window, report=None)
    runs = len(instance.get_runs())

    first = tick(instance, lake, None)
    again = tick(instance, lake, first.cursor)

    assert first.run_requests == again.run_requests == []
    assert len(instance.get_runs()) == runs


def test_a_drop_validated_by_the_cli_from_other_bytes_is_validated_again(
    lake, instance, fast_forecast, fast_window
):
    validate_drops(LAST, str(lake), instance, report=None)
    old_week = LAST - dt.timedelta(weeks=10)
    redrop(lake, old_week, units=999.0)

    [request] = tick(instance, lake, None).run_requests

    assert request.partition_key is None  # old_week alone, in a history run
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        old_week.isoformat(),
        old_week.isoformat(),
    )


def test_the_same_drop_seen_again_requests_nothing(lake, instance):
    first = tick(instance, lake, None)
    redrop(lake, LAST)

    again = tick(instance, lake, first.cursor)

    assert again.run_requests == []


def test_a_corrected_redrop_of_an_old_week_reruns_that_week_in_one_run(
    lake, instance, fast_forecast, fast_window
):
    first = tick(instance, lake, None)
    assert execute(first.run_requests[0], lake, instance, fast_forecast, fast_window)
    cursor = tick(instance, lake, first.cursor).cursor
    old_week = LAST - dt.timedelta(weeks=10)
    redrop(lake, old_week, units=999.0)

    [request] = tick(instance, lake, cursor).run_requests

    assert request.partition_key == old_week.isoformat()
    assert {"sales_history", "demand_forecast"} <= {
        k.to_user_string() for k in request.asset_selection
    }
    assert request.run_key != first.run_requests[0].run_key
    assert execute(request, lake, instance, fast_forecast, fast_window)
    validated = Lake(str(lake)).read_partition("sales_history", "week", old_week)
    assert 999.0 in validated["units_sold"].to_numpy()


def test_a_drop_without_its_marker_is_never_picked_up(lake, instance):
    first = tick(instance, lake, None)
    half_written = LAST + dt.timedelta(weeks=1)
    folder = Path(Lake(str(lake)).sales_drop_dir(half_written))
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"not yet complete")

    later = tick(instance, lake, first.cursor)

    assert later.run_requests == []


def test_a_drop_for_a_week_that_has_not_ended_is_reported_not_run(lake, instance):
    today = dt.datetime.now(dt.UTC).date()
    this_week = today - dt.timedelta(days=today.weekday())
    landing = Lake(str(lake))
    frame = landing.read_partition("landing/sales", "week", LAST)
    landing.write_landing_drop(this_week, frame.assign(week=this_week))

    result = tick(instance, lake, None)

    requested_ends = [r.tags[RANGE_END] for r in result.run_requests]
    assert this_week.isoformat() not in requested_ends
    assert this_week.isoformat() in SensorState.from_cursor(result.cursor).reported


def test_a_failed_history_run_is_not_followed_by_a_forecast(
    lake, instance, fast_forecast, fast_window
):
    bad = Path(Lake(str(lake)).sales_drop_dir(LAST)) / "part-0.parquet"
    frame = pd.read_parquet(bad)
    frame.loc[0, "units_sold"] = -5.0
    frame.to_parquet(bad, index=False)
    (bad.parent / "_SUCCESS").touch()  # files first, the marker last
    first = tick(instance, lake, None)

    assert not execute(first.run_requests[0], lake, instance, fast_forecast, fast_window)
    after = tick(instance, lake, first.cursor)

    assert after.run_requests == []
    assert SensorState.from_cursor(after.cursor).pending == {}


def test_the_weeks_of_a_failed_run_are_validated_again_once_the_bad_drop_is_corrected(
    lake, instance, fast_forecast, fast_window
):
    bad_week = LAST - dt.timedelta(weeks=10)
    bad = Path(Lake(str(lake)).sales_drop_dir(bad_week)) / "part-0.parquet"
    good = pd.read_parquet(bad)
    good.assign(units_sold=-1.0).to_parquet(bad, index=False)
    (bad.parent / "_SUCCESS").touch()
    first = tick(instance, lake, None)
    assert not execute(first.run_requests[0], lake, instance, fast_forecast, fast_window)

    waiting = tick(instance, lake, first.cursor)  # the same content is not retried
    assert waiting.run_requests == []
    assert SensorState.from_cursor(waiting.cursor).seen == {}

    good.to_parquet(bad, index=False)
    (bad.parent / "_SUCCESS").touch()
    retry = tick(instance, lake, waiting.cursor)
    [request] = retry.run_requests
    oldest = LAST - dt.timedelta(weeks=WEEKS - 1)
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        oldest.isoformat(),
        LAST.isoformat(),
    )
    assert execute(request, lake, instance, fast_forecast, fast_window)
    forecast = tick(instance, lake, retry.cursor)
    assert [r.partition_key for r in forecast.run_requests] == [LAST.isoformat()]
    assert len(SensorState.from_cursor(forecast.cursor).seen) == WEEKS


def test_week_ranges_group_consecutive_mondays():
    monday = dt.date(2026, 1, 5)
    weeks = [monday + dt.timedelta(weeks=i) for i in (0, 1, 2, 5, 7, 8)]

    assert week_ranges(weeks) == [
        (weeks[0], weeks[2]),
        (weeks[3], weeks[3]),
        (weeks[4], weeks[5]),
    ]


def test_local_landing_zone_identity_changes_with_content_not_with_the_marker(lake):
    zone = LocalLandingZone(root=str(lake))
    before = zone.complete_drops()[LAST].identity
    redrop(lake, LAST)
    assert zone.complete_drops()[LAST].identity == before
    redrop(lake, LAST, units=123.0)
    assert zone.complete_drops()[LAST].identity != before
    assert os.path.exists(Path(Lake(str(lake)).sales_drop_dir(LAST)) / "_SUCCESS")
