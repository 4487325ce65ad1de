"""One run of a week at a time: the CLI holds a lock per lake and week while it runs the week.

Two runs of one week at once replace each other's materializations under each other's checks
(both fail, nothing is published) and share the cores. Runs the daemon launches (sensor, schedule,
UI) are serialized by the run queue: a tag concurrency limit of 1 per `dagster/partition` value
(docs/deployment.md). The CLI executes in its own process, past that queue, so `hold_week` takes an
exclusive file lock under the instance's folder for the lake and week, and refuses when another
process holds it or when the instance has an unfinished run of the week on the same lake (one
the daemon launched, say): the second run says clearly that the week is already running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from .partitions import PARTITION_TAG
from .resources import LAKE_TAG, lake_tags

__all__ = ["WeekAlreadyRunning", "hold_week"]

LOCK_FOLDER = "zeos-week-locks"
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


class WeekAlreadyRunning(RuntimeError):
    """Another run of the same week on the same lake is under way."""


@contextlib.contextmanager
def hold_week(instance: dg.DagsterInstance, lake_root: str, week: dt.date) -> Iterator[None]:
    """Holds the lake's week for the block, or raises `WeekAlreadyRunning` at once.

    The lock is the kernel's (`flock`): it goes with the process, so a killed CLI never leaves it
    held.
    """
    lake = lake_tags(lake_root)[LAKE_TAG]
    folder = Path(instance.root_directory) / LOCK_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(lake.encode()).hexdigest()[:16]
    with open(folder / f"{key}-{week.isoformat()}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WeekAlreadyRunning(
                f"Week {week} of {lake} is already running ({holder}): two runs of one week "
                "would replace each other's results. Run it again once that run has finished."
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"held by process {os.getpid()}")
            handle.flush()
            _refuse_active_runs(instance, lake, week)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _refuse_active_runs(instance: dg.DagsterInstance, lake: str, week: dt.date) -> None:
    """Raises when the instance has an unfinished run of the week on the lake (daemon, UI)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=ACTIVE, tags={PARTITION_TAG: week.isoformat()})
    )
    # A queued run has no lake tag yet (its lake resource adds it when it starts): it may be ours.
    runs = [r for r in runs if r.tags.get(LAKE_TAG) in (None, lake)]
    if runs:
        raise WeekAlreadyRunning(
            f"Week {week} of {lake} is already running: run {runs[0].run_id} is "
            f"{runs[0].status.value}. Run it again once that run has finished (the Dagster UI "
            "shows it)."
        )
