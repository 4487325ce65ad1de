"""`zeos-forecast bench backfill`: a backfill of many weeks, then a burst of drops for the sensor.

Each step runs as its own process tree on a fresh Dagster instance in the data folder, measured
from outside (wall time, resident memory of the tree sampled every 0.2 s):

1. Data, generated once and reused (the streamed generator of `bench scale`):
   `history_weeks + weeks + burst` weekly drops of `skus` SKUs ending at the latest complete
   Monday. The last `burst` drops are held back in `<folder>/burst/`.
2. The one-off backlog: `zeos-forecast validate` up to the last week to backfill.
3. The backfill: `zeos-forecast backfill` of the `weeks` weeks before the held-back ones, one
   run per week, each with a full window of `history_weeks` weeks. Its per-week start and end
   times split the memory samples into a peak per week: the trend shows whether memory grows.
4. The burst: the held-back drops land at once; one process
   (`python -m zeos_forecast.bench.backfill sensor`) evaluates the real `landing_sensor` on the
   bench's instance, from the cursor of a sensor that had validated every earlier drop, and
   executes each run it requests as the daemon would, until a tick requests nothing.

Prints a table and writes `results.json` in the data folder, the logs under `runs/`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from ..core.progress import Report
from ..core.settings import ForecastSettings
from ..datasets.synthetic import latest_complete_week
from .data import DEFAULT_ROOT, BenchData, fresh_runs_folder, prepare_data
from .measure import Measured, run_measured
from .scale import BenchFailed

__all__ = [
    "BackfillOptions",
    "burst_sensor",
    "caught_up_cursor",
    "format_results",
    "main",
    "prepare_backfill_data",
    "run_backfill",
]

if TYPE_CHECKING:
    from ..pipeline.landing_zone import LandingZone

BURST_FOLDER = "burst"
MAX_TICKS = 6  # a burst needs three (history run, forecast run, nothing left): more is a bug
GIB, MIB = 1 << 30, 1 << 20
BACKLOG, BACKFILL, SENSOR = "backlog", "backfill", "sensor"


@dataclass(frozen=True)
class BackfillOptions:
    """What `bench backfill` runs (the command's options).

    Attributes:
        skus: SKUs generated.
        weeks: Weeks backfilled.
        history_weeks: Training window of every backfilled week, and the weeks of drops before
            the first one (so that its window is full).
        burst: Drops that land at once after the backfill, for the sensor.
        data: The data folder (default `/tmp/zeos-bench/backfill-skus<N>-history<H>-weeks<W>-
            burst<B>-seed<S>/`).
        seed: Seed of the synthetic data.
        engine, n_estimators, threads: Passed to the runs when given (default: the forecast's).
    """

    skus: int
    weeks: int = 52
    history_weeks: int = ForecastSettings().history_weeks
    burst: int = 20
    data: Path | None = None
    seed: int = 0
    engine: str | None = None
    n_estimators: int | None = None
    threads: int | None = None

    @property
    def folder(self) -> Path:
        return self.data or DEFAULT_ROOT / (
            f"backfill-skus{self.skus}-history{self.history_weeks}-weeks{self.weeks}-"
            f"burst{self.burst}-seed{self.seed}"
        )

    @property
    def model_args(self) -> list[str]:
        """The model options of the runs, as `zeos-forecast backfill` takes them."""
        given = {
            "--history-weeks": self.history_weeks,
            "--engine": self.engine,
            "--n-estimators": self.n_estimators,
            "--threads": self.threads,
        }
        return [part for flag, v in given.items() if v is not None for part in (flag, str(v))]

    @property
    def run_configs(self) -> dict[str, dict[str, Any]]:
        """The same options as run config of the sensor's runs: forecast, window, compute."""
        forecast = {"n_estimators": self.n_estimators, "threads": self.threads}
        return {
            "forecast": {k: v for k, v in forecast.items() if v is not None},
            "window": {"history_weeks": self.history_weeks},
            "compute": {} if self.engine is None else {"engine": self.engine},
        }


@dataclass(frozen=True)
class BackfillData:
    """The bench's data folder and its weeks."""

    data: BenchData
    weeks: int
    burst: int

    @property
    def burst_weeks(self) -> list[dt.date]:
        return [self.data.origin - dt.timedelta(weeks=i) for i in reversed(range(self.burst))]

    @property
    def last_backfilled(self) -> dt.date:
        return self.data.origin - dt.timedelta(weeks=self.burst)

    @property
    def first_backfilled(self) -> dt.date:
        return self.last_backfilled - dt.timedelta(weeks=self.weeks - 1)

    @property
    def first_drop(self) -> dt.date:
        return self.data.origin - dt.timedelta(weeks=self.data.weeks - 1)

    def held_back(self, week: dt.date) -> Path:
        return self.data.folder / BURST_FOLDER / f"week={week}"

    def landed(self, week: dt.date) -> Path:
        return self.data.lake / "landing" / "sales" / f"week={week}"


def prepare_backfill_data(options: BackfillOptions, report: Report = print) -> BackfillData:
    """Reuses or generates the drops, then holds the burst's drops back from the landing zone.

    Raises:
        ValueError: for sizes that cannot run.
    """
    if options.skus < 1 or options.weeks < 1 or options.burst < 1 or options.history_weeks < 2:
        raise ValueError(
            "bench backfill needs --skus, --weeks and --burst >= 1 and --history-weeks >= 2, got "
            f"{options.skus}, {options.weeks}, {options.burst}, {options.history_weeks}"
        )
    total = options.history_weeks + options.weeks + options.burst
    data = prepare_data(
        options.folder, options.skus, total, 0, options.seed, latest_complete_week(), report
    )
    found = BackfillData(data, options.weeks, options.burst)
    if not data.reused:
        shutil.rmtree(data.folder / BURST_FOLDER, ignore_errors=True)  # of other data
    for week in found.burst_weeks:
        held, landed = found.held_back(week), found.landed(week)
        if not held.exists():
            held.parent.mkdir(exist_ok=True)
            landed.rename(held)
        else:  # landed by an earlier run of the bench
            shutil.rmtree(landed, ignore_errors=True)
    return found


def run_backfill(options: BackfillOptions, report: Report = print) -> dict[str, Any]:
    """Prepares (or reuses) the data, runs the backlog, the backfill and the burst.

    The results are also written to `results.json` in the data folder and printed as a table.

    Raises:
        ValueError: for sizes that cannot run.
        BenchFailed: when a step fails.
    """
    bench = prepare_backfill_data(options, report)
    runs = fresh_runs_folder(bench.data)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(bench.data.folder / "dagster_home"),
        "ZEOS_FIRST_WEEK": bench.first_drop.isoformat(),
    }
    cli = [sys.executable, "-m", "zeos_forecast.cli"]
    lake = ["--lake", str(bench.data.lake)]
    last = bench.last_backfilled.isoformat()

    backlog = _measure(BACKLOG, [*cli, "validate", *lake, "--week", last], runs, env, report)
    backfill_json, sensor_json = runs / "backfill.json", runs / "sensor.json"
    first = bench.first_backfilled.isoformat()
    backfill_command = [
        *cli, "backfill", *lake, "--from", first, "--to", last, *options.model_args,
        "--metadata-json", str(backfill_json),
    ]  # fmt: skip
    sensor_command = [
        sys.executable, "-m", "zeos_forecast.bench.backfill", "sensor", *lake,
        "--caught-up-to", last, "--configs", json.dumps(options.run_configs),
        "--out", str(sensor_json),
    ]  # fmt: skip
    backfill = _measure(BACKFILL, backfill_command, runs, env, report)
    report(
        f"{len(bench.burst_weeks)} drops land at once: "
        f"{bench.burst_weeks[0]} .. {bench.burst_weeks[-1]}"
    )
    for week in bench.burst_weeks:
        shutil.copytree(bench.held_back(week), bench.landed(week))
    sensor = _measure(SENSOR, sensor_command, runs, env, report)
    results = {
        "benchmark": "backfill",
        "options": {
            "skus": options.skus,
            "weeks": options.weeks,
            "history_weeks": options.history_weeks,
            "burst": options.burst,
            "seed": options.seed,
            "engine": options.engine,
            "n_estimators": options.n_estimators,
            "threads": options.threads,
        },
        "data": {
            **bench.data.describe(),
            "folder": str(bench.data.folder),
            "reused": bench.data.reused,
            "backfilled": [first, last],
            "burst": [bench.burst_weeks[0].isoformat(), bench.burst_weeks[-1].isoformat()],
        },
        "machine": {"cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total},
        "runs": {
            BACKLOG: {**_run_fields(backlog), "weeks": bench.data.weeks - bench.burst},
            BACKFILL: {**_run_fields(backfill), **_per_week(backfill, backfill_json)},
            SENSOR: {**_run_fields(sensor), **_sensor_steps(sensor, sensor_json)},
        },
    }
    path = bench.data.folder / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    report(format_results(results))
    report(f"Results: {path}")
    return results


def _measure(
    name: str, command: list[str], runs: Path, env: dict[str, str], report: Report
) -> Measured:
    log = runs / f"{name}.log"
    report(f"Running the {name} (own process; log {log}) ...")
    measured = run_measured(command, log, env=env)
    report(f"  {measured.seconds:.1f} s, peak RSS {_bytes(measured.peak_rss_bytes)}")
    if not measured.ok:
        killed = ": killed, out of memory?" if measured.returncode == -9 else ""
        raise BenchFailed(
            f"The {name} failed (exit {measured.returncode}{killed}); the end of "
            f"{measured.log}:\n{measured.log_tail()}"
        )
    return measured


def _run_fields(measured: Measured) -> dict[str, Any]:
    return {
        "seconds": round(measured.seconds, 2),
        "peak_rss_bytes": measured.peak_rss_bytes,
        "log": str(measured.log),
    }


def peak_between(samples: Sequence[tuple[float, int]], start: float, end: float) -> int:
    """The largest memory sample taken from `start` to `end` (seconds since the epoch), else 0."""
    return max((rss for at, rss in samples if start <= at <= end), default=0)


def _per_week(measured: Measured, metadata_json: Path) -> dict[str, Any]:
    """Seconds and peak memory of each backfilled week, and the trend of those peaks."""
    weeks = json.loads(metadata_json.read_text())
    per_week = [
        {
            "week": week,
            "seconds": round(values["finished"] - values["started"], 2),
            "peak_rss_bytes": peak_between(measured.samples, values["started"], values["finished"]),
            "skus_scored": values["assets"].get("demand_forecast", {}).get("skus_scored"),
        }
        for week, values in sorted(weeks.items())
    ]
    peaks = [w["peak_rss_bytes"] for w in per_week]
    # Least squares over the weeks after the first (which pays for the imports and caches).
    later = peaks[1:] if len(peaks) > 2 else peaks
    slope = float(np.polyfit(np.arange(len(later)), later, 1)[0]) if len(later) > 1 else 0.0
    return {
        "seconds_per_week": round(sum(w["seconds"] for w in per_week) / len(per_week), 2),
        "trend_bytes_per_week": round(slope),
        "weeks": per_week,
    }


def _sensor_steps(measured: Measured, steps_json: Path) -> dict[str, Any]:
    """The sensor process's ticks and runs, each with its peak memory."""
    found = json.loads(steps_json.read_text())
    for step in found["steps"]:
        if step["kind"] == "run":  # a tick is over before the next sample, most of the time
            step["peak_rss_bytes"] = peak_between(
                measured.samples, step["started"], step["finished"]
            )
    return found


def format_results(results: dict[str, Any]) -> str:
    """The results as a table for a terminal (and the README)."""
    o, d, runs = results["options"], results["data"], results["runs"]
    backlog, backfill, sensor = runs[BACKLOG], runs[BACKFILL], runs[SENSOR]
    weeks = backfill["weeks"]
    marks = {"first": weeks[0], "middle": weeks[len(weeks) // 2], "last": weeks[-1]}
    lines = [
        "",
        f"bench backfill: {o['skus']:,} SKUs; {o['weeks']} weeks backfilled "
        f"({d['backfilled'][0]} .. {d['backfilled'][1]}), each on a {o['history_weeks']}-week "
        f"window; then {o['burst']} drops at once ({d['burst'][0]} .. {d['burst'][1]})",
        f"data: {d['folder']} ({'reused' if d['reused'] else 'generated'}; "
        f"{d['history_rows']:,} rows in {d['weeks']} weekly drops)",
        "",
        f"{'':<40}{'wall':>10}{'peak RSS':>12}",
        _row(f"backlog validation ({backlog['weeks']} weeks)", backlog),
        _row(f"backfill ({len(weeks)} weeks, one run each)", backfill)
        + f"   {backfill['seconds_per_week']:.1f} s per week",
        "  peak RSS by week: "
        + ", ".join(f"{k} ({w['week']}) {_bytes(w['peak_rss_bytes'])}" for k, w in marks.items())
        + f"; trend {backfill['trend_bytes_per_week'] / MIB:+.1f} MiB per week",
        _row(f"sensor: {o['burst']} drops landed at once", sensor),
    ]
    for step in sensor["steps"]:
        if step["kind"] == "tick":
            asked = "; ".join(step["requests"]) or "nothing"
            lines.append(f"  tick: {step['seconds']:.2f} s, requested: {asked}")
        else:
            lines.append(
                f"  run {step['request']}: {step['seconds']:.1f} s, peak RSS "
                f"{_bytes(step['peak_rss_bytes'])}"
            )
    lines.append(f"  weeks of the burst validated: {sensor['validated']} of {o['burst']}")
    return "\n".join(lines)


def _row(label: str, run: dict[str, Any]) -> str:
    return f"{label:<40}{run['seconds']:>8.1f} s{_bytes(run['peak_rss_bytes']):>12}"


def _bytes(value: int) -> str:
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / MIB:.0f} MiB"


def _describe(request) -> str:
    """`sales_history 2026-07-13 .. 2026-11-23 (20 weeks)` or `forecast 2026-11-23`."""
    from ..pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG

    tags = request.tags or {}
    if RANGE_START_TAG in tags:
        first, last = (dt.date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
        return f"sales_history {first} .. {last} ({(last - first).days // 7 + 1} weeks)"
    return f"forecast {request.partition_key}"


def caught_up_cursor(landing: LandingZone, week: dt.date) -> str:
    """The cursor of a `landing_sensor` that has validated every drop up to `week` and has no
    run in flight: what it holds once it kept up with the drops as they came."""
    from ..pipeline.sensors import SensorState

    drops = landing.complete_drops()
    seen = {w.isoformat(): drop.identity for w, drop in drops.items() if w <= week}
    return SensorState(seen=seen).to_cursor()


def burst_sensor(
    lake_root: str,
    caught_up_to: dt.date,
    forecast_config: dict[str, Any],
    window_config: dict[str, Any],
    compute_config: dict[str, Any],
) -> dict[str, Any]:
    """Ticks the real `landing_sensor` on the instance under `DAGSTER_HOME` and executes every run
    it requests, until a tick requests nothing.

    The first tick starts from the cursor of a sensor that had validated every drop up to
    `caught_up_to` (their identities as the landing zone shows them now).

    Returns:
        `steps`: each tick (seconds, requests) and run (seconds, run id) with its start and end
        (seconds since the epoch); `validated`: weeks after `caught_up_to` the cursor holds as
        validated at the end.
    """
    import dagster as dg

    from ..definitions import defs
    from ..pipeline.deployment import landing_resource
    from ..pipeline.launch import dagster_instance, execute_request
    from ..pipeline.sensors import LANDING_SENSOR, SensorState

    landing_sensor = defs.resolve_sensor_def(LANDING_SENSOR)
    instance = dagster_instance()
    landing = landing_resource(lake_root)
    cursor_text: str | None = caught_up_cursor(landing, caught_up_to)
    steps: list[dict[str, Any]] = []
    for _ in range(MAX_TICKS):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor_text, resources={"landing": landing}
        )
        started = time.time()
        result = landing_sensor(context)
        steps.append(
            {
                "kind": "tick",
                "started": started,
                "finished": time.time(),
                "seconds": round(time.time() - started, 3),
                "requests": [_describe(r) for r in result.run_requests],
            }
        )
        cursor_text = result.cursor
        if not result.run_requests:
            break
        for request in result.run_requests:
            started = time.time()
            run_id, _ = execute_request(
                request, lake_root, instance, forecast_config, window_config, compute_config
            )
            steps.append(
                {
                    "kind": "run",
                    "request": _describe(request),
                    "run_id": run_id,
                    "started": started,
                    "finished": time.time(),
                    "seconds": round(time.time() - started, 2),
                }
            )
    validated = SensorState.from_cursor(cursor_text).seen
    after = [w for w in validated if w > caught_up_to.isoformat()]
    return {"steps": steps, "validated": len(after)}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zeos_forecast.bench.backfill sensor ...`: the burst step, in its own process."""
    parser = argparse.ArgumentParser(prog="python -m zeos_forecast.bench.backfill")
    commands = parser.add_subparsers(dest="step", required=True)
    sensor = commands.add_parser("sensor", help=burst_sensor.__doc__.split("\n\n")[0])
    sensor.add_argument("--lake", required=True)
    sensor.add_argument("--caught-up-to", type=dt.date.fromisoformat, required=True)
    sensor.add_argument("--out", type=Path, required=True)
    sensor.add_argument(
        "--configs",
        type=json.loads,
        default={},
        help='run config as JSON: {"forecast": {...}, "window": {...}, "compute": {...}}',
    )
    args = parser.parse_args(argv)
    found = burst_sensor(
        args.lake,
        args.caught_up_to,
        args.configs.get("forecast", {}),
        args.configs.get("window", {}),
        args.configs.get("compute", {}),
    )
    args.out.write_text(json.dumps(found, indent=2) + "\n")
    for step in found["steps"]:
        print(json.dumps(step))
    return 0


if __name__ == "__main__":
    sys.exit(main())
