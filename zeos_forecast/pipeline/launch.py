"""Materialize the asset graph for a week on a real Dagster instance, as the UI would.

The CLI, the demo and backtests all come through here, so they run the very assets of the code
location: the weekly job of `DemandForecastComponent.from_environment`, on the lake given (its
partitions start at that lake's first drop), and their runs show up in the UI afterwards.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ..core.progress import Report
from ..core.run_plan import RunPlan, plan_runs, recorded_identities
from ..core.settings import ForecastSettings
from ..datasets import add_data_hint
from ..datasets.synthetic import latest_complete_week
from ..storage import LANDING_SALES, Lake
from .console_log import console_log_level
from .dead_runs import fail_runs_of_dead_processes, process_tag
from .demand_features import DEMAND_FEATURES
from .demand_forecast import DEMAND_FORECAST
from .deployment import open_lake
from .environment import FIRST_WEEK_VAR
from .forecast_accuracy import FORECAST_ACCURACY
from .jobs import WEEKLY_FORECAST
from .partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from .published_forecast import PUBLISHED_FORECAST
from .resources import lake_tags
from .sales_history import SALES_HISTORY
from .sensors import FORECAST_ASSETS, RUN_KEY_TAG
from .week_lock import hold_week

__all__ = [
    "RunFailed",
    "WeekRun",
    "compute_resource_config",
    "dagster_instance",
    "execute_request",
    "forecast_week",
    "history_runs_needed",
    "materialize_accuracy",
    "plan_week",
    "validate_drops",
    "validate_history",
]

# The embedded default: local run and event storage under DAGSTER_HOME (see README for
# production). No concurrency pools: their slots are freed after a killed run only by the daemon's
# run monitoring, which the CLI does not run, so a killed CLI would block every later publication;
# `published_forecast` refuses on its own to move `latest` back to an older week.
DEFAULT_INSTANCE_YAML = "telemetry:\n  enabled: false\n"


class RunFailed(RuntimeError):
    """A Dagster run failed; the message is the step's own error (file, column, rows)."""


@dataclass
class WeekRun:
    """What one `forecast_week` call ran, and the metadata each asset reported."""

    week: dt.date
    run_ids: list[str] = field(default_factory=list)
    history_weeks_validated: int = 0
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    # One line per check that did not pass in a run that succeeded (a warning, or an error that
    # blocks nothing): Dagster records them, and the CLI prints them.
    failed_checks: list[str] = field(default_factory=list)


def dagster_instance() -> dg.DagsterInstance:
    """The instance under `DAGSTER_HOME` (default `./.dagster`, the one `make dev` shows).

    Runs left unfinished by a CLI process that is gone are marked failed first (`dead_runs`).
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML)
    instance = dg.DagsterInstance.get()
    for line in fail_runs_of_dead_processes(instance):
        print(line, file=sys.stderr)
    return instance


def compute_resource_config(compute_config: dict[str, Any] | None) -> dict[str, Any]:
    """Run config of the `compute` resource (engine, memory budget, Dask): for a run started here
    and for the runs of a backfill a deployment's daemon starts."""
    return {"compute": {"config": compute_config or {}}}


def forecast_week(
    week: dt.date,
    lake_root: str,
    instance: dg.DagsterInstance,
    forecast_config: dict[str, Any] | None = None,
    window_config: dict[str, Any] | None = None,
    report: Report | None = print,
    publish: bool = True,
    compute_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> WeekRun:
    """Brings `sales_history` up to date for the window, then materializes features and forecast.

    Weekly drops of the window that were never validated, or were dropped again since, are
    validated in one run per contiguous range of weeks (when the week's own drop is the only
    one, in the forecast's run: `core.run_plan`); then one run builds the features and the
    forecast of `week`, publishes it (unless `publish` is False, as in backtests) and scores the
    earlier forecasts that covered `week` (`forecast_accuracy`).

    Only one run of a week at a time (`week_lock`): another one under way refuses this one.

    Raises:
        RunFailed: with the failing step's error message.
        WeekAlreadyRunning: when the week is being run on the lake already.
    """
    window_config = window_config or {}
    history_weeks = window_config.get("history_weeks", ForecastSettings().history_weeks)
    outcome = WeekRun(week=week)
    lake = open_lake(lake_root)
    drops = lake.sales_drops()
    _check_partition_range(week, history_weeks, list(drops), lake_root)
    if week not in drops:
        raise RunFailed(_no_drop_message(week, lake, list(drops)))
    with hold_week(instance, lake_root, week):
        plan = plan_week(lake, week, history_weeks, instance)
        assets = list(FORECAST_ASSETS)
        if plan.at_once:  # the week's own drop is the only new one: one run validates it too
            assets.insert(0, SALES_HISTORY)
            outcome.history_weeks_validated += 1
        else:
            validate_history(
                lake, lake_root, week, history_weeks, instance, report, outcome, plan, tags
            )
        if report:
            validating = "Validating the week's drop, building" if plan.at_once else "Building"
            report(f"{validating} features and forecast for {week} ...")
        ops = {
            DEMAND_FEATURES: {"config": window_config},
            DEMAND_FORECAST: {"config": forecast_config or {}},
        }
        if not publish:
            assets.remove(PUBLISHED_FORECAST)
        run_id, metadata = _execute(
            instance,
            assets,
            {**(tags or {}), PARTITION_TAG: week.isoformat()},
            lake_root,
            ops,
            compute_config,
            outcome.failed_checks,
        )
        outcome.run_ids.append(run_id)
        outcome.metadata.update(metadata)
        return outcome


def execute_request(
    request: dg.RunRequest,
    lake_root: str,
    instance: dg.DagsterInstance,
    forecast_config: dict[str, Any] | None = None,
    window_config: dict[str, Any] | None = None,
    compute_config: dict[str, Any] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Executes a sensor's run request as the daemon launches it: the same job, assets and tags.

    The run is tagged with the request's run key, so that the sensor's next tick finds it and
    sees how it ended. `forecast_config` and `window_config` apply to a forecast run only.

    Returns:
        The run id and the metadata each asset reported.

    Raises:
        RunFailed: with the failing step's error message.
    """
    assets = [key.to_user_string() for key in request.asset_selection or []]
    tags = {**(request.tags or {}), RUN_KEY_TAG: request.run_key or ""}
    if request.partition_key:
        tags[PARTITION_TAG] = request.partition_key
    ops = {}
    if DEMAND_FORECAST in assets:
        ops = {
            DEMAND_FEATURES: {"config": window_config or {}},
            DEMAND_FORECAST: {"config": forecast_config or {}},
        }
    return _execute(instance, assets, tags, lake_root, ops, compute_config)


def materialize_accuracy(
    week: dt.date, lake_root: str, instance: dg.DagsterInstance
) -> dict[str, Any]:
    """Materializes `forecast_accuracy` for `week` alone; returns its metadata."""
    _, metadata = _execute(
        instance, [FORECAST_ACCURACY], {PARTITION_TAG: week.isoformat()}, lake_root, {}
    )
    return metadata.get(FORECAST_ACCURACY, {})


def validate_drops(
    week: dt.date,
    lake_root: str,
    instance: dg.DagsterInstance,
    report: Report | None = print,
) -> WeekRun:
    """Validates every complete sales drop up to `week` that is new or was dropped again.

    The history backlog of a new landing zone, or the drops that arrived since the last run,
    without building features or forecasts: `validate_history` over all weeks from the first
    drop to `week`.

    Raises:
        RunFailed: when there is no drop up to `week`, when a week is outside the partitions,
            or with the failing step's error message.
    """
    lake = open_lake(lake_root)
    drop_weeks = [w for w in lake.sales_drops() if w <= week]
    if not drop_weeks:
        raise RunFailed(
            f"No complete sales drop up to week {week} under {lake.uri}: a drop is "
            "landing/sales/week=YYYY-MM-DD/ with its files and a _SUCCESS marker."
        )
    weeks = -(-(week - drop_weeks[0]).days // 7) + 1  # rounded up: a misnamed drop is refused
    _check_partition_range(week, weeks, drop_weeks, lake_root)
    return validate_history(lake, lake_root, week, weeks, instance, report)


def validate_history(
    lake: Lake,
    lake_root: str,
    week: dt.date,
    weeks: int,
    instance: dg.DagsterInstance,
    report: Report | None = print,
    outcome: WeekRun | None = None,
    plan: RunPlan | None = None,
    tags: dict[str, str] | None = None,
) -> WeekRun:
    """Validates the drops of the `weeks` weeks ending at `week` that are new or dropped again.

    One `sales_history` run per contiguous range of stale weeks (`plan`, else planned here);
    returns what ran.
    """
    outcome = outcome or WeekRun(week=week)
    plan = plan or plan_week(lake, week, weeks, instance, forecast=False)
    for first, last in plan.validate:
        if report:
            report(f"Validating sales_history {first} .. {last} in one run ...")
        range_tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
        run_id, metadata = _execute(
            instance,
            [SALES_HISTORY],
            {**(tags or {}), **range_tags},
            lake_root,
            {},
            failed_checks=outcome.failed_checks,
        )
        outcome.run_ids.append(run_id)
        outcome.history_weeks_validated += (last - first).days // 7 + 1
        outcome.metadata.update(metadata)
    return outcome


def plan_week(
    lake: Lake,
    week: dt.date,
    history_weeks: int,
    instance: dg.DagsterInstance | None = None,
    forecast: bool = True,
) -> RunPlan:
    """The run planner's runs for the window of `week` (and its forecast, unless `forecast`
    is False): the same rule for a new drop as the sensor's (`core.run_plan`).

    A week is stale when its partition was made from another drop than the one there now (the
    drop's content identity differs from the one the partition's footer records, whatever the
    files' times), when it has no partition, or, given an instance, when the instance has no
    record of materializing it (say a range run failed on a later week after writing this one):
    the instance, not the lake, is what the UI shows.

    Raises:
        RunFailed: when a drop of the window cannot be read now (still arriving over its old
            marker, a link out of the landing zone, ...), or is named by another day than Monday.
    """
    first = week - dt.timedelta(weeks=history_weeks - 1)
    drops = {w: d for w, d in lake.sales_drops().items() if first <= w <= week}
    _refuse_misnamed_drops(list(drops))
    unready = [d for d in drops.values() if not d.ready]
    if unready:
        raise RunFailed(
            f"The drop of {unready[0].week} cannot be read now ({len(unready)} of the window's "
            f"drops):\n{unready[0].problem}"
        )
    recorded = (
        instance.get_materialized_partitions(dg.AssetKey(SALES_HISTORY)) if instance else None
    )
    validated = recorded_identities(lake, list(drops), recorded)
    identities = {w: d.identity for w, d in drops.items()}
    return plan_runs(identities, validated, forecast=[week] if forecast else [])


def history_runs_needed(
    lake: Lake,
    week: dt.date,
    history_weeks: int,
    instance: dg.DagsterInstance | None = None,
) -> list[tuple[dt.date, dt.date]]:
    """Contiguous week ranges of the window whose `sales_history` must be (re)materialized
    (`plan_week`'s, without the forecast)."""
    return plan_week(lake, week, history_weeks, instance, forecast=False).validate


def _no_drop_message(week: dt.date, lake: Lake, drop_weeks: list[dt.date]) -> str:
    """What is missing (one line), and the weeks there are or the commands that add some."""
    missing = (
        f"No complete sales drop for week {week} under {lake.uri} "
        f"({LANDING_SALES}/week={week}/ with its files and a _SUCCESS marker)."
    )
    if not drop_weeks:
        return f"{missing}\nThe lake has no drop at all: add data with " + add_data_hint(lake.uri)
    weeks = sorted(drop_weeks)
    count = f"{len(weeks)} week{'s' if len(weeks) != 1 else ''}"
    return (
        f"{missing}\nWeeks with a drop: {weeks[0]} .. {weeks[-1]} ({count}); forecast one of "
        f"them (latest: --week {weeks[-1]}), or add data with " + add_data_hint(lake.uri)
    )


def _refuse_misnamed_drops(weeks: list[dt.date]) -> None:
    """A drop folder named by another day than Monday is no partition: say so, never skip it."""
    misnamed = sorted(w for w in weeks if w.weekday() != 0)
    if misnamed:
        day = misnamed[0]
        monday = day - dt.timedelta(days=day.weekday())
        raise RunFailed(
            f"{LANDING_SALES}/week={day}/ is named by a {day:%A}, but weeks are named by their "
            f"Monday: rename it to {LANDING_SALES}/week={monday}/ (or merge its files into that "
            f"drop), then write its _SUCCESS marker again. Misnamed drop folders: {len(misnamed)}."
        )


def _check_partition_range(
    week: dt.date, history_weeks: int, drop_weeks: list[dt.date], lake_root: str
) -> None:
    """Weeks outside the partitions get a message saying what to change, not an invariant error."""
    weekly_partitions = weekly_job(lake_root).partitions_def
    assert isinstance(weekly_partitions, dg.TimeWindowPartitionsDefinition)
    last_key = weekly_partitions.get_last_partition_key()
    if last_key is None or week > dt.date.fromisoformat(last_key):
        # No partition at all when every drop of the lake is of a week that has not ended.
        raise RunFailed(
            f"Week {week} has not ended yet: the latest complete week is {latest_complete_week()}."
        )
    first_partition = dt.date.fromisoformat(weekly_partitions.get_first_partition_key() or "")
    window_start = week - dt.timedelta(weeks=history_weeks - 1)
    if any(window_start <= w < first_partition for w in drop_weeks):
        raise RunFailed(
            f"The {history_weeks}-week window of {week} starts on {window_start}, before the "
            f"first weekly partition {first_partition} ({FIRST_WEEK_VAR}). Set {FIRST_WEEK_VAR}="
            f"{window_start} (or an earlier Monday), or unset it to start the partitions at the "
            "lake's first drop, for the CLI and `make dev` alike; or pass a shorter "
            "--history-weeks."
        )


@functools.lru_cache(maxsize=8)
def weekly_job(lake_root: str | None = None) -> dg.JobDefinition:
    """The weekly job of the code location's component instance on `lake_root` (its partitions
    start at that lake's first drop unless `ZEOS_FIRST_WEEK` says otherwise). A module-level
    factory, so runs are reconstructable (`dg.build_reconstructable_job`)."""
    from ..component import DemandForecastComponent

    component = DemandForecastComponent.from_environment(lake=lake_root)
    return component.build_definitions().resolve_job_def(WEEKLY_FORECAST)


def _execute(
    instance: dg.DagsterInstance,
    assets: list[str],
    tags: dict[str, str],
    lake_root: str,
    ops: dict[str, Any],
    compute_config: dict[str, Any] | None = None,
    failed_checks: list[str] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Runs the assets; returns the run id and each asset's materialization metadata, and adds a
    line per check that did not pass to `failed_checks`."""
    run_config = {
        "loggers": {"console": {"config": {"log_level": console_log_level()}}},
        "resources": {
            "lake": {"config": {"root": lake_root}},
            **compute_resource_config(compute_config),
        },
        "ops": ops,
    }
    job = dg.build_reconstructable_job(
        __name__, weekly_job.__name__, reconstructable_kwargs={"lake_root": lake_root}
    )
    with dg.execute_job(
        job,
        instance=instance,
        run_config=run_config,
        tags={**lake_tags(lake_root), **process_tag(), **tags},
        asset_selection=[dg.AssetKey(a) for a in assets],
        raise_on_error=False,
    ) as result:
        if not result.success:
            raise RunFailed(_failure_message(result))
        if failed_checks is not None:
            failed_checks.extend(_failed_checks(result))
        return result.run_id, _materialization_metadata(result)


def _failed_checks(result: dg.ExecuteJobResult) -> list[str]:
    lines = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        week = f" for week {evaluation.partition}" if evaluation.partition else ""
        lines.append(
            f"{evaluation.severity.value.lower()}: check {evaluation.asset_key.to_user_string()}"
            f" {evaluation.check_name} did not pass{week} (run {result.run_id}): "
            f"{evaluation.description}"
        )
    return lines


def _failure_message(result: dg.ExecuteJobResult) -> str:
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        description = event.step_failure_data.user_failure_data
        text = (
            description.description
            if description and description.description
            else (error.message.strip() if error else "unknown error")
        )
        messages.append(f"{event.step_key} failed (run {result.run_id}):\n{text}")
    return "\n".join(messages) or f"run {result.run_id} failed"


def _materialization_metadata(result: dg.ExecuteJobResult) -> dict[str, dict[str, Any]]:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return found
