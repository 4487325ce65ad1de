"""`zeos-forecast bench contention`: the weekly run's training with other processes on the cores.

A Dagster machine is never idle: the daemon, the webserver and other runs share its cores. On
every core, each step of a LightGBM tree waits for the slowest thread, and when another process
holds one core that thread waits for the scheduler: training collapsed (issue 20: ~350 trees/s
fell to ~20 on a 300-SKU lake). This benchmark measures it through the real CLI: on generated
data, each side runs the weekly `forecast` once alone and once while `--busy` processes spin on
their own cores, and the table gives the training's time (`demand_forecast` fit and
calibration, from the run's metadata), the whole run's wall time, and the share of its quiet
throughput each side keeps.

- baseline: the previous default, `--fit-threads 0` (LightGBM on all cores);
- ours: the defaults as shipped (`fit_threads` 1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.progress import Report
from ..datasets.synthetic import latest_complete_week
from .data import BenchData, default_folder, fresh_runs_folder, prepare_data
from .measure import run_measured

__all__ = ["ContentionOptions", "format_contention", "run_contention", "spinning"]

SIDES = {
    "baseline": ("baseline: --fit-threads 0 (all cores)", ["--fit-threads", "0"]),
    "ours": ("ours: the defaults", []),
}
LOADS = ("quiet", "busy")
# Stages of `demand_forecast` that train LightGBM models (the calibration fits on held-back weeks).
TRAINING_STAGES = ("seconds_fit", "seconds_calibrate")
SPIN = "while True: pass"


class ContentionFailed(RuntimeError):
    """A run of the benchmark failed (the message holds the end of its log)."""


@dataclass(frozen=True)
class ContentionOptions:
    """What `bench contention` runs (the command's options).

    Attributes:
        skus, weeks: Size of the generated history (`weeks` weekly drops of `skus` SKUs).
        busy: Processes spinning on their own cores during the busy runs.
        data: The data folder (default `/tmp/zeos-bench/skus<N>-weeks<W>-seed<S>`).
        seed: Seed of the synthetic data.
        horizon: Weeks forecast.
    """

    skus: int = 300
    weeks: int = 104
    busy: int = 1
    data: Path | None = None
    seed: int = 0
    horizon: int = 12

    @property
    def folder(self) -> Path:
        return self.data or default_folder(self.skus, self.weeks, self.seed)


@contextlib.contextmanager
def spinning(processes: int) -> Iterator[list[subprocess.Popen]]:
    """`processes` Python processes that keep a core busy each, stopped on exit."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(processes)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait(timeout=30)


def run_contention(options: ContentionOptions, report: Report = print) -> dict[str, Any]:
    """Runs both sides quiet and busy on the same data; returns (and prints) the results.

    Raises:
        ContentionFailed: when a run fails.
    """
    if options.busy < 1 or options.busy >= (os.cpu_count() or 1):
        raise ValueError(
            f"--busy must leave at least one of the {os.cpu_count()} cores free and keep one "
            f"busy, got {options.busy}"
        )
    data = prepare_data(
        options.folder,
        options.skus,
        options.weeks,
        options.horizon,
        options.seed,
        latest_complete_week(),
        report,
    )
    runs = fresh_runs_folder(data)
    env = {**os.environ, "DAGSTER_HOME": str(data.folder / "dagster_home")}
    before = (data.origin - dt.timedelta(weeks=1)).isoformat()
    report(f"Validating the history up to {before} (once, not measured) ...")
    _run(["validate", "--lake", str(data.lake), "--week", before], runs / "backlog", env)
    report("Warming up: one weekly run (not measured) ...")
    _forecast(data, options, [], runs / "warm-up", env)
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for side, (label, arguments) in SIDES.items():
        for load in LOADS:
            report(f"Running {label}, {load} ...")
            with spinning(options.busy if load == "busy" else 0):
                figures = _forecast(data, options, arguments, runs / f"{side}-{load}", env)
            measured.setdefault(side, {})[load] = figures
            training, run = figures["training_seconds"], figures["run_seconds"]
            report(f"  training {training:.1f} s, run {run:.1f} s")
    results = {
        "benchmark": "contention",
        "options": {"skus": options.skus, "weeks": options.weeks, "busy": options.busy},
        "machine": {"cpus": os.cpu_count()},
        "data": {**data.describe(), "folder": str(data.folder)},
        "sides": {side: SIDES[side][0] for side in SIDES},
        "runs": measured,
    }
    (data.folder / "contention.json").write_text(json.dumps(results, indent=2) + "\n")
    report(format_contention(results))
    return results


def _forecast(
    data: BenchData, options: ContentionOptions, arguments: list[str], folder: Path, env: dict
) -> dict[str, float]:
    metadata_json = folder / "metadata.json"
    command = [
        "forecast", "--lake", str(data.lake), "--week", data.origin.isoformat(),
        "--horizon", str(options.horizon), "--history-weeks", str(options.weeks),
        *arguments, "--metadata-json", str(metadata_json),
    ]  # fmt: skip
    seconds = _run(command, folder, env)
    forecast = json.loads(metadata_json.read_text()).get("demand_forecast", {})
    missing = [stage for stage in TRAINING_STAGES if stage not in forecast]
    if missing:
        raise ContentionFailed(f"demand_forecast's metadata has no {', '.join(missing)}")
    return {
        "training_seconds": round(sum(forecast[stage] for stage in TRAINING_STAGES), 2),
        "run_seconds": round(seconds, 2),
        "train_rows": forecast.get("train_rows"),
    }


def _run(arguments: list[str], folder: Path, env: dict) -> float:
    command = [sys.executable, "-m", "zeos_forecast.cli", *arguments]
    measured = run_measured(command, folder / "run.log", env=env)
    if not measured.ok:
        raise ContentionFailed(
            f"`zeos-forecast {' '.join(arguments[:1])}` failed (exit {measured.returncode}); "
            f"the end of {measured.log}:\n{measured.log_tail()}"
        )
    return measured.seconds


def format_contention(results: dict[str, Any]) -> str:
    """The results as a table: training and run seconds, quiet and busy, and the share kept."""
    options = results["options"]
    lines = [
        f"bench contention: {options['skus']:,} SKUs x {options['weeks']} weeks, "
        f"{results['machine']['cpus']} cores, {options['busy']} kept busy in the busy runs",
        "",
        "| side | training quiet s | training busy s | throughput kept | run quiet s "
        "| run busy s |",
        "|---|---|---|---|---|---|",
    ]
    for side, loads in results["runs"].items():
        quiet, busy = loads["quiet"], loads["busy"]
        kept = quiet["training_seconds"] / busy["training_seconds"]
        lines.append(
            f"| {results['sides'][side]} | {quiet['training_seconds']:.1f} | "
            f"{busy['training_seconds']:.1f} | {kept:.0%} | {quiet['run_seconds']:.1f} | "
            f"{busy['run_seconds']:.1f} |"
        )
    lines.append("")
    lines.append(
        "throughput kept = training seconds quiet / busy (fit and calibration of demand_forecast)"
    )
    return "\n".join(lines)
