"""Backfills: `forecast_week` for every week of a range, one run per week, oldest first.

The same runs as the sensor's and the UI's: each week's features, forecast, checks, publication
and accuracy. Weeks that exist are replaced (every partition is written atomically), so a
backfill can be re-run. Two ways, one range check (`checked_weeks`) and one tag: every run of one
backfill carries `zeos/backfill=<id>`.

- Here (`run_backfill`): the CLI runs the weeks itself, in this process and without `dagster dev`,
  after any drop of each week's window that is new or dropped again was validated. The runs are
  grouped by the tag only: a Dagster backfill record (Overview > Backfills) is created publicly
  only for runs a daemon launches (`PartitionBackfill` and `DagsterInstance.add_backfill` are
  private).
- On a deployment (`submit_backfill`, `follow_backfill`): one Dagster backfill of the weeks'
  asset partitions, submitted through the webserver's GraphQL mutation `launchPartitionBackfill`
  (the UI's), run by the deployment's daemon with the deployment's settings, and followed here
  until it is done. The weeks' drops must have been validated there (the sensor does it).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ..core.progress import Progress, Report
from .deployment import open_lake
from .launch import RunFailed, WeekRun, compute_resource_config, forecast_week
from .partitions import PARTITION_TAG
from .sensors import FORECAST_ASSETS
from .webserver import (
    BACKFILL,
    BACKFILL_DONE,
    LAUNCH_BACKFILL,
    Webserver,
    WebserverError,
    WebserverUnreachable,
)

__all__ = [
    "BACKFILL_TAG",
    "BackfilledWeek",
    "DeploymentBackfill",
    "backfill_path",
    "backfill_weeks",
    "checked_weeks",
    "follow_backfill",
    "new_backfill_id",
    "run_backfill",
    "submit_backfill",
]

# The run tag that groups the runs of one CLI backfill (the UI filters the runs list by it).
BACKFILL_TAG = "zeos/backfill"
# Seconds between two looks at a backfill on a deployment (one small GraphQL query each).
POLL_SECONDS = 2.0
# How long the CLI follows a backfill on a deployment; it goes on there after that.
FOLLOW_TIMEOUT_SECONDS = 24 * 3600
# How long a webserver that stops answering while a backfill is followed may take to come back
# (a restart of the deployment): the backfill goes on meanwhile.
UNANSWERED_SECONDS = 120
_FAILED_RUN = ("FAILURE", "CANCELED")
_FINISHED_RUN = ("SUCCESS", *_FAILED_RUN)


@dataclass
class BackfilledWeek:
    """One week of a backfill: what ran, and when (seconds since the epoch)."""

    run: WeekRun
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def new_backfill_id(first: dt.date, last: dt.date) -> str:
    """An id that names the range and is unique: `2026-10-26..2026-11-09-3f9a1c`."""
    return f"{first}..{last}-{secrets.token_hex(3)}"


def backfill_weeks(first: dt.date, last: dt.date) -> list[dt.date]:
    """The Mondays `first .. last`.

    Raises:
        ValueError: when a bound is not a Monday or the range ends before it starts.
    """
    if first.weekday() or last.weekday():
        raise ValueError(f"A backfill runs from a Monday to a Monday, got {first} .. {last}.")
    if last < first:
        raise ValueError(f"The backfill ends ({last}) before it starts ({first}).")
    return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def checked_weeks(lake_root: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The Mondays `first .. last`, once every one of them has a complete drop on the lake.

    Raises:
        ValueError: for a range that is not Mondays in order.
        RunFailed: when a week of the range has no complete drop.
    """
    weeks = backfill_weeks(first, last)
    lake = open_lake(lake_root)
    drops = lake.sales_drop_weeks()
    missing = [w for w in weeks if w not in drops]
    if missing:
        raise RunFailed(
            f"No complete sales drop under {lake.uri} for {len(missing)} of the {len(weeks)} "
            f"weeks to backfill ({', '.join(map(str, missing[:5]))}"
            f"{', ...' if len(missing) > 5 else ''}): a drop is landing/sales/week=YYYY-MM-DD/ "
            "with its files and a _SUCCESS marker."
        )
    return weeks


def run_backfill(
    lake_root: str,
    first: dt.date,
    last: dt.date,
    instance: dg.DagsterInstance,
    forecast_config: dict[str, Any] | None = None,
    window_config: dict[str, Any] | None = None,
    compute_config: dict[str, Any] | None = None,
    report: Report | None = print,
    backfill_id: str | None = None,
) -> list[BackfilledWeek]:
    """Forecasts (and publishes) every week from `first` to `last`, one Dagster run per week,
    every run tagged `zeos/backfill=<backfill_id>` (default: a new id).

    Raises:
        ValueError: for a range that is not Mondays in order.
        RunFailed: before any run when a week of the range has no complete drop; else with the
            failing week's error, saying which weeks are done and where to start again.
    """
    weeks = checked_weeks(lake_root, first, last)
    tags = {BACKFILL_TAG: backfill_id or new_backfill_id(first, last)}
    progress = Progress("backfill", len(weeks), "weeks", report, every_seconds=0)
    done: list[BackfilledWeek] = []
    for week in weeks:
        started = time.time()
        try:
            run = forecast_week(
                week,
                lake_root,
                instance,
                forecast_config,
                window_config,
                report=report,
                compute_config=compute_config,
                tags=tags,
            )
        except RunFailed as error:
            raise RunFailed(
                f"Week {week} failed after {len(done)} of {len(weeks)} weeks were backfilled; "
                f"once fixed, continue with --from {week}.\n{error}"
            ) from error
        done.append(BackfilledWeek(run, started, time.time()))
        progress.advance()
    return done


@dataclass
class DeploymentBackfill:
    """A Dagster backfill on a deployment, as `follow_backfill` last saw it."""

    backfill_id: str
    status: str  # Dagster's `BulkActionStatus`: COMPLETED_SUCCESS, COMPLETED_FAILED, CANCELED, ...
    succeeded: list[dt.date]
    failed: dict[dt.date, list[str]]  # week -> its failed runs; none: it waited on a failed week
    seconds: float
    error: str | None = None  # the backfill's own error (it could not launch its runs)

    @property
    def done(self) -> bool:
        return self.status in BACKFILL_DONE


def backfill_path(backfill_id: str) -> str:
    """The UI's page of a backfill (Dagster 1.13: its runs and partitions)."""
    return f"/runs/b/{backfill_id}"


def submit_backfill(
    webserver: Webserver,
    weeks: list[dt.date],
    backfill_id: str,
    compute_config: dict[str, Any] | None = None,
) -> str:
    """Submits one Dagster backfill of the weekly assets' partitions `weeks` to the deployment
    behind `webserver`, tagged `zeos/backfill=<backfill_id>`; returns Dagster's backfill id.

    `compute_config` (engine, memory budget, Dask) goes to every run of the backfill as the
    `compute` resource's run config; the model's settings are the deployment's.

    Raises:
        WebserverError: when the webserver does not answer or refuses the backfill.
    """
    # The weeks of each asset, exactly: given `assetSelection` and `partitionNames`, Dagster adds
    # every partition downstream of a selected one (`forecast_accuracy` of each later week, whose
    # window holds the forecasts of the range), which `forecast_week` does not run.
    weeks_range = {"range": {"start": weeks[0].isoformat(), "end": weeks[-1].isoformat()}}
    params: dict[str, Any] = {
        "partitionsByAssets": [
            {"assetKey": {"path": [asset]}, "partitions": weeks_range} for asset in FORECAST_ASSETS
        ],
        "tags": [{"key": BACKFILL_TAG, "value": backfill_id}],
        "title": f"zeos-forecast backfill {weeks[0]} .. {weeks[-1]}",
    }
    if compute_config:
        params["runConfigData"] = {"resources": compute_resource_config(compute_config)}
    launched = webserver.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise WebserverError(
            f"The Dagster webserver at {webserver.shown} did not launch the backfill "
            f"({launched['__typename']}): {launched.get('message', '')}".rstrip()
        )
    return launched["backfillId"]


def follow_backfill(
    webserver: Webserver,
    backfill_id: str,
    weeks: list[dt.date],
    report: Report | None = print,
    timeout_seconds: float = FOLLOW_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> DeploymentBackfill:
    """Follows a backfill of `weeks` until the daemon is done with it (or `timeout_seconds` have
    passed: then the result is not `done`), reporting each week whose runs all succeeded.

    A week has succeeded once runs of the backfill that succeeded materialized every one of its
    assets (the daemon may take two: a week's `forecast_accuracy` waits for the week before).

    Raises:
        WebserverError: when the webserver stops answering (for `UNANSWERED_SECONDS`), or no
            longer knows the backfill.
    """
    progress = Progress("backfill", len(weeks), "weeks", report, every_seconds=0)
    started = answered = time.monotonic()
    reported: set[dt.date] = set()
    while True:
        try:
            seen = webserver.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        except WebserverUnreachable as error:
            if time.monotonic() - answered > UNANSWERED_SECONDS:
                raise WebserverUnreachable(
                    f"{error}\nStopped following backfill {backfill_id} after "
                    f"{UNANSWERED_SECONDS} s without an answer; the deployment goes on with it."
                ) from None
            time.sleep(poll_seconds)
            continue
        answered = time.monotonic()
        if seen["__typename"] != "PartitionBackfill":
            raise WebserverError(
                f"The Dagster webserver at {webserver.shown} no longer knows backfill "
                f"{backfill_id}: {seen.get('message', seen['__typename'])}"
            )
        succeeded, failed = _week_outcomes(seen["runs"], weeks)
        for week in succeeded:
            if week not in reported:
                reported.add(week)
                progress.advance()
        elapsed = time.monotonic() - started
        if seen["status"] in BACKFILL_DONE or elapsed > timeout_seconds:
            error = (seen.get("error") or {}).get("message")
            return DeploymentBackfill(
                backfill_id, seen["status"], succeeded, failed, elapsed, error
            )
        time.sleep(poll_seconds)


def _week_outcomes(
    runs: list[dict[str, Any]], weeks: list[dt.date]
) -> tuple[list[dt.date], dict[dt.date, list[str]]]:
    """The weeks whose assets all succeeded, and the failed runs of the others."""
    by_week: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        by_week.setdefault(tags.get(PARTITION_TAG, ""), []).append(run)
    succeeded, failed = [], {}
    for week in weeks:
        week_runs = by_week.get(week.isoformat(), [])
        done = {
            "/".join(key["path"])
            for run in week_runs
            if run["status"] == "SUCCESS"
            for key in run["assetSelection"] or []
        }
        finished = all(run["status"] in _FINISHED_RUN for run in week_runs)
        if finished and done.issuperset(FORECAST_ASSETS):
            succeeded.append(week)
        else:
            failed[week] = [run["runId"] for run in week_runs if run["status"] in _FAILED_RUN]
    return succeeded, failed
