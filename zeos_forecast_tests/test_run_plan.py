"""The run planner: one rule for a new drop, and as few runs as the drops need."""

from __future__ import annotations

import datetime as dt

from zeos_forecast.core.run_plan import RunPlan, plan_runs, stale_weeks, weeks_to_forecast

MONDAY = dt.date(2026, 1, 5)
WEEKS = [MONDAY + dt.timedelta(weeks=i) for i in range(6)]


def drops(*identities: str) -> dict[dt.date, str]:
    return dict(zip(WEEKS, identities, strict=False))


def test_a_week_is_stale_when_its_drop_is_not_the_one_validated_whoever_validated_it():
    landing = drops("a", "b", "c")
    validated = {WEEKS[0]: "a", WEEKS[1]: "old b"}

    assert stale_weeks(landing, validated) == [WEEKS[1], WEEKS[2]]


def test_a_backlog_is_validated_in_one_run_per_contiguous_range_before_its_forecast():
    landing = drops("a", "b", "c", "d", "e")
    validated = {WEEKS[2]: "c"}

    plan = plan_runs(landing, validated, forecast=[WEEKS[4]])

    assert plan == RunPlan(
        validate=[(WEEKS[0], WEEKS[1]), (WEEKS[3], WEEKS[4])], forecast=[WEEKS[4]]
    )
    assert plan.weeks_to_validate == 4


def test_a_single_new_week_with_its_history_up_to_date_is_validated_and_forecast_in_one_run():
    landing = drops("a", "b", "c")
    validated = {WEEKS[0]: "a", WEEKS[1]: "b"}

    plan = plan_runs(landing, validated, forecast=[WEEKS[2]])

    assert plan == RunPlan(at_once=WEEKS[2])
    assert plan.weeks_to_validate == 1


def test_a_new_week_waits_for_its_own_run_while_other_weeks_are_still_being_validated():
    landing = drops("a", "b", "c")
    validated = {WEEKS[0]: "a", WEEKS[1]: "b"}

    plan = plan_runs(landing, validated, forecast=[WEEKS[2]], combine=False)

    assert plan == RunPlan(validate=[(WEEKS[2], WEEKS[2])], forecast=[WEEKS[2]])


def test_nothing_to_run_when_every_drop_is_validated_and_nothing_is_to_be_forecast():
    landing = drops("a", "b")

    assert plan_runs(landing, dict(landing)) == RunPlan()


def test_the_sensor_forecasts_the_latest_new_week_and_corrections_not_an_old_backlog():
    stale = [WEEKS[0], WEEKS[1], WEEKS[3], WEEKS[5]]
    validated_before = {WEEKS[3]: "an earlier drop"}

    assert weeks_to_forecast(stale, validated_before, latest=WEEKS[5]) == [WEEKS[3], WEEKS[5]]
