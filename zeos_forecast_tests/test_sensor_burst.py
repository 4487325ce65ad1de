"""landing_sensor keeps up when 20 weekly drops land at once: one history run, then one forecast.

A landing zone of 30 weeks is taken up as a sensor does it (first tick, its history run, the
forecast of the latest week). Then 20 more weekly drops land at once (their folders are moved in
together), and the sensor is ticked on the real instance, each requested run executed as the
daemon would, with its run key.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from weekly_graph import landing_sensor

from zeos_forecast.bench.backfill import caught_up_cursor
from zeos_forecast.pipeline.landing_zone import LocalLandingZone
from zeos_forecast.pipeline.launch import execute_request
from zeos_forecast.pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG
from zeos_forecast.pipeline.sensors import SensorState
from zeos_forecast.storage import LANDING_SALES, SUCCESS_MARKER

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

LAST = dt.date(2026, 11, 9)
BURST, BEFORE = 20, 30
SKUS = 50
BURST_WEEKS = [LAST - dt.timedelta(weeks=i) for i in reversed(range(BURST))]
LAST_BEFORE = BURST_WEEKS[0] - dt.timedelta(weeks=1)
WINDOW = {"history_weeks": BEFORE}
FORECAST_ASSETS = {"demand_features", "demand_forecast", "published_forecast"}


@dataclass
class Burst:
    root: Path
    instance: dg.DagsterInstance
    caught_up: str  # the cursor once the sensor had taken up the first 30 weeks
    landed: dg.SensorResult  # the tick right after the 20 drops landed
    while_validating: dg.SensorResult  # a tick before that run has finished
    validated: dg.SensorResult  # the tick after the history run succeeded
    forecast: dg.SensorResult  # the tick after the forecast run succeeded
    resent: dg.SensorResult  # the tick after every marker of the 20 drops was written again


def tick(instance: dg.DagsterInstance, root: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LocalLandingZone(root=str(root))}
    )
    return landing_sensor(context)


def described(result: dg.SensorResult) -> list[tuple]:
    """Each request as (assets, first week, last week) or (assets, partition)."""
    found = []
    for request in result.run_requests:
        assets = frozenset(key.to_user_string() for key in request.asset_selection)
        tags = request.tags or {}
        if RANGE_START_TAG in tags:
            found.append((assets, tags[RANGE_START_TAG], tags[RANGE_END_TAG]))
        else:
            found.append((assets, request.partition_key))
    return found


@pytest.fixture(scope="module")
def burst(landing_factory, tmp_path_factory, fast_forecast) -> Burst:
    base = tmp_path_factory.mktemp("burst")
    root = base / "lake"
    shutil.copytree(landing_factory(SKUS, BEFORE + BURST, LAST), root)
    held = base / "held"
    held.mkdir()
    for week in BURST_WEEKS:
        (root / LANDING_SALES / f"week={week}").rename(held / f"week={week}")

    def run_all(result: dg.SensorResult) -> None:
        for request in result.run_requests:
            execute_request(request, str(root), instance, fast_forecast, WINDOW)

    with dg.instance_for_test() as instance:
        first = tick(instance, root, None)
        run_all(first)
        latest = tick(instance, root, first.cursor)
        run_all(latest)
        caught_up = tick(instance, root, latest.cursor).cursor

        for week in BURST_WEEKS:  # all 20 land at once
            (held / f"week={week}").rename(root / LANDING_SALES / f"week={week}")
        landed = tick(instance, root, caught_up)
        while_validating = tick(instance, root, landed.cursor)
        run_all(landed)
        validated = tick(instance, root, while_validating.cursor)
        run_all(validated)
        forecast = tick(instance, root, validated.cursor)
        for week in BURST_WEEKS:
            (root / LANDING_SALES / f"week={week}" / SUCCESS_MARKER).touch()
        resent = tick(instance, root, forecast.cursor)
        yield Burst(
            root, instance, caught_up, landed, while_validating, validated, forecast, resent
        )


def test_twenty_drops_landing_at_once_are_validated_by_one_run_over_exactly_those_weeks(burst):
    assert described(burst.landed) == [
        (frozenset({"sales_history"}), str(BURST_WEEKS[0]), str(BURST_WEEKS[-1]))
    ]


def test_nothing_more_is_requested_while_that_run_has_not_finished(burst):
    assert burst.while_validating.run_requests == []


def test_once_it_succeeded_exactly_one_forecast_run_is_requested_for_the_latest_week(burst):
    [(assets, week)] = described(burst.validated)
    assert week == str(LAST)
    assert assets >= FORECAST_ASSETS


def test_the_latest_week_alone_is_forecast_and_published(burst):
    published = sorted(p.name for p in (burst.root / "published_forecast").iterdir())
    assert published == [f"forecast_week={LAST_BEFORE}", f"forecast_week={LAST}"]


def test_every_one_of_the_twenty_weeks_is_validated(burst):
    materialized = burst.instance.get_materialized_partitions(dg.AssetKey("sales_history"))
    assert {str(week) for week in BURST_WEEKS} <= materialized
    written = {p.name for p in (burst.root / "sales_history").iterdir()}
    assert {f"week={week}" for week in BURST_WEEKS} <= written
    drops = LocalLandingZone(root=str(burst.root)).complete_drops()
    seen = SensorState.from_cursor(burst.forecast.cursor).seen
    assert {str(w): seen.get(str(w)) for w in BURST_WEEKS} == {
        str(w): drops[w].identity for w in BURST_WEEKS
    }


def test_the_same_drops_never_trigger_twice(burst):
    assert burst.forecast.run_requests == []
    assert burst.resent.run_requests == []
    state = SensorState.from_cursor(burst.resent.cursor)
    assert state.in_flight == {} and state.pending == {} and state.failed == []


def test_the_bench_starts_from_the_cursor_the_sensor_reaches_by_itself(burst):
    # bench backfill ticks its burst from `caught_up_cursor`: it must be what a real sensor holds.
    before = LocalLandingZone(root=str(burst.root))
    reached = SensorState.from_cursor(burst.caught_up)
    built = SensorState.from_cursor(caught_up_cursor(before, LAST_BEFORE))

    assert (built.seen, built.in_flight, built.pending) == (reached.seen, {}, {})
    assert reached.in_flight == {} and reached.pending == {}
