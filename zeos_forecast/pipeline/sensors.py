"""`landing_sensor`: new weekly drops start their runs; nobody has to click.

Each tick asks the run planner (`core.run_plan`, the CLI's too) what the complete drops of the
landing zone need, given what is validated:
- A week counts as validated when a run succeeded on its drop's content, whoever started it: this
  sensor (its cursor), or the CLI and the UI (the identity the week's `sales_history` partition
  records, for a partition the Dagster instance has materialized). So weeks the CLI validated are
  never validated again when the sensor is turned on.
- Stale drops (new, corrected, or left over from a failed run) are validated: one `sales_history`
  run per contiguous range of such weeks; a backlog of years is one run.
- Forecast are the latest week with a drop and corrections of weeks validated before; older weeks
  of a backlog are forecast only when someone backfills them. A forecast waits for every history
  run of its tick, so it never reads a half-validated window; but a single new week whose history
  is up to date is validated and forecast in one run (features, forecast, checks, publication).
- The weeks of a failed run are validated again, all of them, once any drop among them changes;
  the same content is not retried.
- Run keys carry the drops' content identity: the same drop never triggers twice, a corrected
  re-drop of an old week does, whatever its files' times (`cp -a`, `rsync -a`, `mv`).
- A drop that cannot be read now (still arriving over its old marker, a link out of the landing
  zone) is logged and looked at again on the next tick.
- Drops for weeks outside the partitions (not yet ended, or before the first) are reported once
  and picked up when their week becomes a partition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

import dagster as dg

from ..core.run_plan import plan_runs, stale_weeks, weeks_to_forecast
from .demand_features import DEMAND_FEATURES
from .demand_forecast import DEMAND_FORECAST
from .forecast_accuracy import FORECAST_ACCURACY
from .instance import ForecastInstance
from .landing_zone import Drop, LandingZone
from .partitions import RANGE_END_TAG, RANGE_START_TAG
from .published_forecast import PUBLISHED_FORECAST
from .sales_history import SALES_HISTORY

__all__ = ["LANDING_SENSOR", "SensorState", "landing_sensor", "landing_sensor_tick"]

LANDING_SENSOR = "landing_sensor"
# Run key prefix of a run that validates one week and forecasts it.
WEEK_RUN = "week"
RUN_KEY_TAG = "dagster/run_key"
# Assets of the per-week forecast run; sales_history has its own runs.
FORECAST_ASSETS = (DEMAND_FEATURES, DEMAND_FORECAST, PUBLISHED_FORECAST, FORECAST_ACCURACY)
FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass
class SensorState:
    """The cursor: what is validated, what is being validated, and what waits to be forecast."""

    seen: dict[str, str] = field(default_factory=dict)  # week -> identity validated by a run
    in_flight: dict[str, dict[str, str]] = field(default_factory=dict)  # run key -> {week: id}
    failed: list[str] = field(default_factory=list)  # history run keys that failed
    pending: dict[str, dict] = field(default_factory=dict)  # week -> identity, history run keys
    reported: list[str] = field(default_factory=list)  # out-of-range weeks already reported

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SensorState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def landing_sensor(
    instance: ForecastInstance, job: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """The instance's sensor on its landing zone, starting runs of its weekly job."""
    forecast_assets = [
        instance.key(asset)
        for asset in FORECAST_ASSETS
        if instance.settings.publish or asset != PUBLISHED_FORECAST
    ]

    @dg.sensor(
        name=instance.name(LANDING_SENSOR),
        job=job,
        minimum_interval_seconds=instance.settings.sensor_interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING
            if instance.settings.sensor_running
            else dg.DefaultSensorStatus.STOPPED
        ),
        required_resource_keys={instance.name("landing")},
        description=landing_sensor_tick.__doc__,
    )
    def _sensor(context: dg.SensorEvaluationContext, **invoked_with) -> dg.SensorResult:
        # Ticks find the resource on the context; a sensor called directly (say in a test)
        # also gets it as a keyword argument named by its key.
        key = instance.name("landing")
        landing = invoked_with.get(key) or getattr(context.resources, key)
        return landing_sensor_tick(context, landing, instance, forecast_assets)

    return _sensor


def landing_sensor_tick(
    context: dg.SensorEvaluationContext,
    landing: LandingZone,
    instance: ForecastInstance,
    forecast_assets: list[dg.AssetKey],
) -> dg.SensorResult:
    """Validates every new or corrected weekly drop, then forecasts the latest week."""
    state = SensorState.from_cursor(context.cursor)
    _settle_history_runs(context.instance, state)
    listed = landing.complete_drops()
    for drop in listed.values():
        if not drop.ready:  # looked at again on every tick: picked up once it can be read
            context.log.warning(f"Not reading the drop of {drop.week} yet: {drop.problem}")
    ready = {week: drop for week, drop in listed.items() if drop.ready}
    drops = _drops_in_partitions(context, instance.partitions, ready, state)
    identities = {week: drop.identity for week, drop in drops.items()}
    validated_before = {dt.date.fromisoformat(w): i for w, i in state.seen.items()}
    _adopt_validated_elsewhere(context, landing, instance, identities, state)
    validated = {dt.date.fromisoformat(w): i for w, i in state.seen.items()}
    for weeks in state.in_flight.values():  # being validated: not stale while their run lasts
        validated.update({dt.date.fromisoformat(w): i for w, i in weeks.items()})
    stale = stale_weeks(identities, validated)
    plan = plan_runs(
        identities,
        validated,
        forecast=weeks_to_forecast(stale, validated_before, max(drops, default=None)),
        combine=not state.in_flight,
    )

    requests = []
    if plan.at_once is not None:
        week, identity = plan.at_once, identities[plan.at_once]
        run_key = f"{instance.name(WEEK_RUN)}:{week}:{identity}"
        if run_key not in state.failed:  # the same content failed before: wait for a correction
            requests.append(
                dg.RunRequest(
                    run_key=run_key,
                    partition_key=week.isoformat(),
                    asset_selection=[instance.key(SALES_HISTORY), *forecast_assets],
                )
            )
            state.in_flight[run_key] = {week.isoformat(): identity}
    for first, last in plan.validate:
        weeks = {w.isoformat(): i for w, i in identities.items() if first <= w <= last}
        run_key = _history_run_key(instance.name(SALES_HISTORY), first, last, weeks)
        if run_key in state.failed:
            continue  # the same content failed before: wait for a corrected drop
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                asset_selection=[instance.key(SALES_HISTORY)],
                tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
            )
        )
        state.in_flight[run_key] = weeks
    # A forecast waits for every history run of this tick: its window may span several ranges.
    history_keys = [r.run_key for r in requests if r.partition_key is None]
    for week in plan.forecast:
        if any(week.isoformat() in state.in_flight[key] for key in history_keys):
            state.pending[week.isoformat()] = {"identity": identities[week], "runs": history_keys}

    requests += _forecasts_ready(context, state, forecast_assets, instance.name("forecast"))
    context.log.info(
        f"{len(drops)} complete drops, {len(stale)} not yet validated, "
        f"{len(state.pending)} forecasts waiting for their history run."
    )
    return dg.SensorResult(
        run_requests=requests,
        cursor=state.to_cursor(),
        skip_reason=None if requests else "No new drops and no forecast ready to run.",
    )


def _adopt_validated_elsewhere(
    context: dg.SensorEvaluationContext,
    landing: LandingZone,
    instance: ForecastInstance,
    identities: dict[dt.date, str],
    state: SensorState,
) -> None:
    """Weeks whose drop a run of the CLI or the UI validated become validated in the cursor.

    Only drops the cursor does not know are looked up (a footer each), so a tick after the
    first costs nothing more unless drops changed.
    """
    validating = {w for weeks in state.in_flight.values() for w in weeks}
    unknown = [
        week
        for week, identity in identities.items()
        if state.seen.get(week.isoformat()) != identity and week.isoformat() not in validating
    ]
    if not unknown:
        return
    recorded = landing.recorded_identities(
        unknown, context.instance.get_materialized_partitions(instance.key(SALES_HISTORY))
    )
    adopted = [w for w in unknown if recorded.get(w) == identities[w]]
    for week in adopted:
        state.seen[week.isoformat()] = identities[week]
    if adopted:
        context.log.info(f"{len(adopted)} drops were validated by other runs (the CLI, the UI).")


def _drops_in_partitions(
    context: dg.SensorEvaluationContext,
    partitions: dg.WeeklyPartitionsDefinition,
    drops: dict[dt.date, Drop],
    state: SensorState,
) -> dict[dt.date, Drop]:
    """The drops whose week is a partition; the others are reported once."""
    keys = set(partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    inside = {}
    for week, drop in drops.items():
        if week.isoformat() in keys:
            inside[week] = drop
        elif week.isoformat() not in state.reported:
            context.log.warning(
                f"Drop for {week} is outside the weekly partitions (from "
                f"{partitions.start:%Y-%m-%d} to the latest complete week); it is picked "
                "up once its week is a partition."
            )
            state.reported.append(week.isoformat())
    return inside


def _settle_history_runs(instance: dg.DagsterInstance, state: SensorState) -> None:
    """Weeks of succeeded history runs become validated; failed runs are remembered."""
    for run_key, weeks in list(state.in_flight.items()):
        run = _latest_run(instance, run_key)
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            state.seen.update(weeks)
            del state.in_flight[run_key]
        elif run is not None and run.status in FAILED:
            state.failed.append(run_key)
            del state.in_flight[run_key]


def _history_run_key(name: str, first: dt.date, last: dt.date, weeks: dict[str, str]) -> str:
    """The run key of a history run: the instance's asset name (run keys are looked up across
    the whole Dagster instance), the weeks and their drops' identities."""
    identities = "".join(identity for _, identity in sorted(weeks.items()))
    return f"{name}:{first}:{last}:{hashlib.sha256(identities.encode()).hexdigest()[:16]}"


def _forecasts_ready(
    context: dg.SensorEvaluationContext,
    state: SensorState,
    forecast_assets: list[dg.AssetKey],
    run_key_prefix: str,
) -> list[dg.RunRequest]:
    """Forecast runs for pending weeks whose history run succeeded; drops those that failed."""
    requests = []
    for week, waiting in sorted(state.pending.items()):
        runs = [_latest_run(context.instance, key) for key in waiting["runs"]]
        failed = [r for r in runs if r is not None and r.status in FAILED]
        if all(r is not None and r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
            requests.append(
                dg.RunRequest(
                    run_key=f"{run_key_prefix}:{week}:{waiting['identity']}",
                    partition_key=week,
                    asset_selection=forecast_assets,
                )
            )
            del state.pending[week]
        elif failed:
            context.log.warning(
                f"Not forecasting {week}: sales_history run {failed[0].run_id} did not succeed. "
                "Fix the drop and drop it again."
            )
            del state.pending[week]
    return requests


def _latest_run(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return runs[0] if runs else None
