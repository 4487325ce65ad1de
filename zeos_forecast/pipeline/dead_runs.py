"""Runs whose process died: the CLI marks them failed the next time it starts.

The CLI executes its runs in its own process (`launch._execute`), where no daemon watches them:
killed (`kill -9`, the OOM killer, a closed terminal), it leaves its run STARTED forever. So each
run it starts is tagged with the process (host, pid and the process's start time, so a reused pid
is not taken for it), and every later CLI start marks the unfinished runs of processes that are
gone as failed, through the instance, as Dagster's run monitoring does for launched runs. The
compute-log `tail` children of a killed process are stopped by Dagster's own orphan watcher
within about a second.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
import psutil

__all__ = ["PROCESS_TAG", "fail_runs_of_dead_processes", "process_tag"]

PROCESS_TAG = "zeos/process"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def process_tag() -> dict[str, str]:
    """The tag naming this process: `host/pid/start time in ms`."""
    return {PROCESS_TAG: _identity(os.getpid())}


def fail_runs_of_dead_processes(instance: dg.DagsterInstance) -> list[str]:
    """Marks unfinished runs of CLI processes of this host that are gone as failed.

    Returns:
        One line per run marked failed, saying which and why.
    """
    marked = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        tag = run.tags.get(PROCESS_TAG)
        if tag is None or not tag.startswith(f"{host}/") or _alive(tag):
            continue
        pid = tag.split("/")[1]
        message = (
            f"The zeos-forecast process that ran this run (pid {pid} on {host}) is gone (killed "
            "or crashed) while the run was unfinished: marked failed by the next CLI start. Run "
            "the week again; every file is replaced atomically, nothing partial was published."
        )
        instance.report_run_failed(run, message=message)
        marked.append(f"Marked run {run.run_id} failed: its process (pid {pid}) is gone.")
    return marked


def _identity(pid: int) -> str:
    process = psutil.Process(pid)
    if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
        raise psutil.NoSuchProcess(pid)
    return f"{socket.gethostname()}/{pid}/{round(process.create_time() * 1000)}"


def _alive(tag: str) -> bool:
    pid = int(tag.split("/")[1])
    try:
        return _identity(pid) == tag
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
