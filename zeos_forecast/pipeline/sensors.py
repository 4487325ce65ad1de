"""`landing_sensor`: new weekly drops start their runs; nobody has to click.

Each tick compares the complete drops of the landing zone with the cursor:
- A new or corrected drop is validated: one `sales_history` run per contiguous range of such weeks
  (on the first tick that is the whole backlog, in one run).
- Its week is then forecast (features, forecast, checks, publication) in a second run that the
  sensor requests only once the history run has succeeded, so a forecast never reads a window that
  is still being written. On the first tick only the latest week is forecast: older weeks are
  forecast when someone backfills them.
- Run keys carry the drops' content identity: the same drop never triggers twice, a corrected
  re-drop of an old week does.
- Drops for weeks outside the partitions (not yet ended, or before the first) are reported once
  and picked up when their week becomes a partition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import dagster as dg

from .demand_features import DEMAND_FEATURES
from .demand_forecast import DEMAND_FORECAST
from .jobs import weekly_forecast_job
from .landing_zone import Drop, LandingZone
from .partitions import RANGE_END_TAG, RANGE_START_TAG, weekly_partitions
from .published_forecast import PUBLISHED_FORECAST
from .sales_history import SALES_HISTORY

__all__ = ["SensorState", "landing_sensor", "week_ranges"]

RUN_KEY_TAG = "dagster/run_key"
DEFAULT_INTERVAL_SECONDS = 60
# Assets of the per-week forecast run; sales_history has its own runs.
FORECAST_ASSETS = (DEMAND_FEATURES, DEMAND_FORECAST, PUBLISHED_FORECAST)
FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass
class SensorState:
    """The cursor: drops already handled and forecasts waiting for their history run."""

    seen: dict[str, str] = field(default_factory=dict)  # week -> drop identity
    pending: dict[str, dict] = field(default_factory=dict)  # week -> identity, history run keys
    reported: list[str] = field(default_factory=list)  # out-of-range weeks already reported

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SensorState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def week_ranges(weeks: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted weeks grouped into contiguous (first, last) ranges."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for week in sorted(weeks):
        if ranges and week - ranges[-1][1] == dt.timedelta(weeks=1):
            ranges[-1] = (ranges[-1][0], week)
        else:
            ranges.append((week, week))
    return ranges


@dg.sensor(
    job=weekly_forecast_job,
    minimum_interval_seconds=int(
        os.environ.get("ZEOS_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS)
    ),
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    """Validates every new or corrected weekly drop, then forecasts its week."""
    state = SensorState.from_cursor(context.cursor)
    first_tick = not state.seen
    keys = set(weekly_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    drops = landing.complete_drops()
    outside = [w for w in drops if w.isoformat() not in keys]
    for week in outside:
        if week.isoformat() not in state.reported:
            context.log.warning(
                f"Drop for {week} is outside the weekly partitions (from "
                f"{weekly_partitions.start:%Y-%m-%d} to the latest complete week); it is picked "
                "up once its week is a partition."
            )
            state.reported.append(week.isoformat())
    changed = {
        w: d
        for w, d in drops.items()
        if w not in outside and state.seen.get(w.isoformat()) != d.identity
    }

    requests = [
        dg.RunRequest(
            run_key=_history_run_key(first, last, changed),
            asset_selection=[dg.AssetKey(SALES_HISTORY)],
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        )
        for first, last in week_ranges(list(changed))
    ]
    # A forecast waits for every history run of this tick: its window may span several ranges.
    history_keys = [r.run_key for r in requests]
    for week in [max(changed)] if first_tick and changed else list(changed):
        state.pending[week.isoformat()] = {"identity": changed[week].identity, "runs": history_keys}
    for week, drop in changed.items():
        state.seen[week.isoformat()] = drop.identity

    requests += _forecasts_ready(context, state)
    context.log.info(
        f"{len(drops)} complete drops, {len(changed)} new or corrected, "
        f"{len(state.pending)} forecasts waiting for their history run."
    )
    return dg.SensorResult(
        run_requests=requests,
        cursor=state.to_cursor(),
        skip_reason=None if requests else "No new drops and no forecast ready to run.",
    )


def _history_run_key(first: dt.date, last: dt.date, drops: dict[dt.date, Drop]) -> str:
    identities = "".join(drops[w].identity for w in sorted(drops) if first <= w <= last)
    return f"{SALES_HISTORY}:{first}:{last}:{hashlib.sha256(identities.encode()).hexdigest()[:16]}"


def _forecasts_ready(
    context: dg.SensorEvaluationContext, state: SensorState
) -> list[dg.RunRequest]:
    """Forecast runs for pending weeks whose history run succeeded; drops those that failed."""
    requests = []
    for week, waiting in sorted(state.pending.items()):
        runs = [_latest_run(context.instance, key) for key in waiting["runs"]]
        failed = [r for r in runs if r is not None and r.status in FAILED]
        if all(r is not None and r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
            requests.append(
                dg.RunRequest(
                    run_key=f"forecast:{week}:{waiting['identity']}",
                    partition_key=week,
                    asset_selection=[dg.AssetKey(a) for a in FORECAST_ASSETS],
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
