"""`zeos-forecast bench scale`: our weekly run against plain mlforecast, on the same data.

Each side runs as its own process tree, measured from outside (wall time, peak RSS of the tree):
the baseline (`python -m zeos_forecast.bench.baseline`), then ours through the real CLI and
Dagster on a fresh instance: `validate` up to the week before the origin (the one-off history
backlog), then `forecast` of the origin week (the weekly run: the new week's drop, features,
training and scoring, checks, publication). Both forecasts are scored against the held-out
weeks that follow the origin. The results go to the terminal as a table and to `results.json`
in the data folder.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from ..core.progress import Report
from ..datasets.synthetic import latest_complete_week
from ..storage import Lake
from .baseline import LAGS
from .data import BenchData, default_folder, fresh_runs_folder, prepare_data
from .measure import Measured, run_measured

__all__ = [
    "BenchFailed",
    "ScaleOptions",
    "format_results",
    "prepare_scale_data",
    "run_scale",
    "score_holdout",
    "stage_seconds",
]

# The measurement of plain mlforecast: fit memory grows ~130 bytes per history row; the
# frame itself holds an int32 id, a datetime64 week and a float32 target per row.
BASELINE_BYTES_PER_HISTORY_ROW = 130 + 4 + 8 + 4
MEMORY_HEADROOM = 0.9  # the baseline runs only if its estimate fits in 90 % of available memory
KEY = ["article_id", "merchant_id"]
ACTUAL = "true_demand"
ACTUAL_NOTE = (
    f"actual = {ACTUAL}: the demand of each held-out week before stockouts (units_sold is lower "
    "in weeks out of stock)"
)
BASELINE, BACKLOG, WEEKLY = "baseline", "ours_backlog", "ours_weekly"
LABELS = {
    BASELINE: "baseline (plain mlforecast)",
    BACKLOG: "ours: backlog ingest",
    WEEKLY: "ours: weekly run",
}
GIB = 1 << 30


class BenchFailed(RuntimeError):
    """Our pipeline failed during the benchmark (the message holds the end of its log)."""


@dataclass(frozen=True)
class ScaleOptions:
    """What `bench scale` runs (the command's options).

    Attributes:
        skus, weeks: Size of the history: `weeks` weekly drops of `skus` SKUs.
        horizon: Weeks forecast and held out after the origin.
        data: The data folder (default `/tmp/zeos-bench/skus<N>-weeks<W>-seed<S>/`).
        seed: Seed of the synthetic data.
        skip_baseline: Run ours only.
        reuse_backlog: Keep the lake's `sales_history` and the Dagster instance of an earlier
            run on the same data when they hold every week before the origin: the backlog is
            neither ingested nor measured again; the weekly run validates its own week as ever.
        compute: Engine options of our run (`engine`, `max_memory_gb`, `dask_address`,
            `workers`: the `compute` resource's config), passed to `zeos-forecast forecast` as
            `--engine`, `--max-memory-gb`, ... (none: the forecast's own defaults).
        n_estimators, threads: Trees per model and threads, for both sides.
        quantile_estimators: Trees of our quantile models (None: the forecast's default; the
            baseline has none).
    """

    skus: int
    weeks: int
    horizon: int = 12
    data: Path | None = None
    seed: int = 0
    skip_baseline: bool = False
    reuse_backlog: bool = False
    compute: dict[str, Any] = field(default_factory=dict)
    n_estimators: int = 100
    threads: int = 2
    quantile_estimators: int | None = None

    @property
    def folder(self) -> Path:
        return self.data or default_folder(self.skus, self.weeks, self.seed)


def prepare_scale_data(options: ScaleOptions, report: Report = print) -> BenchData:
    """The benchmark's data folder: reused when complete, else generated (see `bench.data`).

    Raises:
        ValueError: for sizes the baseline's features cannot train on.
    """
    if options.weeks <= max(LAGS) or options.skus < 1 or options.horizon < 1:
        raise ValueError(
            f"bench scale needs --skus >= 1, --horizon >= 1 and more --weeks than the baseline's "
            f"longest lag ({max(LAGS)}), got {options.skus}, {options.horizon}, {options.weeks}"
        )
    return prepare_data(
        options.folder,
        options.skus,
        options.weeks,
        options.horizon,
        options.seed,
        latest_complete_week(),
        report,
    )


def run_scale(options: ScaleOptions, report: Report = print) -> dict[str, Any]:
    """Prepares (or reuses) the data, runs and scores both sides; returns the results.

    The results are also written to `results.json` in the data folder and printed as a table.

    Raises:
        ValueError: for sizes the baseline's features cannot train on.
        BenchFailed: when our pipeline fails.
    """
    data = prepare_scale_data(options, report)
    reuse_backlog = options.reuse_backlog and _backlog_done(data)
    runs = fresh_runs_folder(data, keep=("sales_history", "dagster_home") if reuse_backlog else ())
    if reuse_backlog:  # the weekly run validates its new week, as every weekly run does
        shutil.rmtree(data.lake / "sales_history" / f"week={data.origin}", ignore_errors=True)
    baseline = _run_baseline(data, options, runs, report)
    backlog, weekly = _run_ours(data, options, runs, report, reuse_backlog)
    forecasts = {WEEKLY: _our_forecast(data)}
    if baseline["status"] == "ok":
        forecasts[BASELINE] = pd.read_parquet(runs / BASELINE / "forecast.parquet")
    scored = score_holdout(forecasts, pd.read_parquet(data.holdout, columns=[*KEY, "week", ACTUAL]))
    for name, run in ((BASELINE, baseline), (WEEKLY, weekly)):
        run.update(scored["accuracy"].get(name, {}))
    results = {
        "benchmark": "scale",
        "options": {
            "skus": options.skus,
            "weeks": options.weeks,
            "horizon": options.horizon,
            "seed": options.seed,
            "compute": dict(options.compute),
            "n_estimators": options.n_estimators,
            "quantile_estimators": options.quantile_estimators,
            "threads": options.threads,
        },
        "data": {**data.describe(), "folder": str(data.folder), "reused": data.reused},
        "machine": {"cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total},
        "actual": ACTUAL_NOTE,
        "scored": {"skus": scored["skus"], "sku_weeks": scored["sku_weeks"]},
        "runs": {BASELINE: baseline, BACKLOG: backlog, WEEKLY: weekly},
        "ours_vs_baseline": _ratios(weekly, baseline),
    }
    path = data.folder / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    report(format_results(results))
    report(f"Results: {path}")
    return results


def _run_baseline(
    data: BenchData, options: ScaleOptions, runs: Path, report: Report
) -> dict[str, Any]:
    if options.skip_baseline:
        return _not_run("skipped (--skip-baseline)")
    needed = data.history_rows * BASELINE_BYTES_PER_HISTORY_ROW
    available = psutil.virtual_memory().available
    if needed > MEMORY_HEADROOM * available:
        note = (
            f"skipped: it would need ~{needed / GIB:.1f} GiB (~{BASELINE_BYTES_PER_HISTORY_ROW} "
            f"bytes per history row, {data.history_rows:,} rows), more than "
            f"{MEMORY_HEADROOM:.0%} of the {available / GIB:.1f} GiB available"
        )
        report(f"Baseline {note}.")
        return _not_run(note)
    command = [
        sys.executable, "-m", "zeos_forecast.bench.baseline",
        "--lake", str(data.lake), "--horizon", str(options.horizon),
        "--n-estimators", str(options.n_estimators), "--threads", str(options.threads),
        "--out", str(runs / BASELINE),
    ]  # fmt: skip
    measured = _measure(BASELINE, command, runs, None, report)
    if not measured.ok:
        note = f"failed (exit {measured.returncode}{_killed(measured)}), log {measured.log}"
        report(f"Baseline {note}:\n{measured.log_tail()}")
        return {**_run_fields(measured), "status": "failed", "note": note}
    own = json.loads((runs / BASELINE / "baseline.json").read_text())
    stages = {k.removesuffix("_seconds"): v for k, v in own.items() if k.endswith("_seconds")}
    return {
        **_run_fields(measured),
        "rows_trained": own["rows_trained"],
        "stages": stages,
        "forecast_skus": own["series"],
    }


def _run_ours(
    data: BenchData, options: ScaleOptions, runs: Path, report: Report, reuse_backlog: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    env = {**os.environ, "DAGSTER_HOME": str(data.folder / "dagster_home")}
    cli = [sys.executable, "-m", "zeos_forecast.cli"]
    lake = ["--lake", str(data.lake)]
    before = data.origin - dt.timedelta(weeks=1)
    backlog = [*cli, "validate", *lake, "--week", before.isoformat()]
    weekly = [
        *cli, "forecast", *lake, "--week", data.origin.isoformat(),
        "--horizon", str(options.horizon), "--history-weeks", str(options.weeks),
        "--n-estimators", str(options.n_estimators), "--threads", str(options.threads),
        *_compute_options(options.compute),
    ]  # fmt: skip
    if options.quantile_estimators is not None:
        weekly += ["--quantile-estimators", str(options.quantile_estimators)]
    results: list[dict[str, Any]] = []
    if reuse_backlog:
        report("Reusing the backlog: sales_history already holds every week before the origin.")
        results.append(_not_run("reused: sales_history of an earlier run (--reuse-backlog)"))
        steps = [(WEEKLY, weekly)]
    else:
        steps = [(BACKLOG, backlog), (WEEKLY, weekly)]
    for name, command in steps:
        metadata_json = runs / f"{name}.json"
        measured = _measure(
            name, [*command, "--metadata-json", str(metadata_json)], runs, env, report
        )
        if not measured.ok:
            raise BenchFailed(
                f"{LABELS[name]} failed (exit {measured.returncode}{_killed(measured)}); the end "
                f"of {measured.log}:\n{measured.log_tail()}"
            )
        metadata = json.loads(metadata_json.read_text())
        forecast = metadata.get("demand_forecast", {})
        results.append(
            {
                **_run_fields(measured),
                "rows_trained": forecast.get("train_rows"),
                "stages": stage_seconds(metadata),
                "forecast_skus": forecast.get("skus_scored"),
            }
        )
    return results[0], results[1]


def _compute_options(compute: dict[str, Any]) -> list[str]:
    """`--engine sharded --workers 1 ...`: the options of `forecast` for the compute config."""
    return [
        word
        for name, value in compute.items()
        for word in ("--" + name.replace("_", "-"), str(value))
    ]


def _backlog_done(data: BenchData) -> bool:
    """Whether an earlier run's backlog is there: a sales_history partition for each drop week
    before the origin, each recorded as materialized by the benchmark's Dagster instance (the
    weekly run validates every week of its window the instance has no record of)."""
    import dagster as dg

    wanted = {data.origin - dt.timedelta(weeks=k) for k in range(1, data.weeks)}
    if not wanted <= set(Lake(str(data.lake)).partitions("sales_history", "week")):
        return False
    home = data.folder / "dagster_home"
    if not (home / "dagster.yaml").exists():
        return False
    with dg.DagsterInstance.from_config(str(home)) as instance:
        recorded = instance.get_materialized_partitions(dg.AssetKey("sales_history"))
    return {week.isoformat() for week in wanted} <= recorded


def _measure(
    name: str, command: list[str], runs: Path, env: dict[str, str] | None, report: Report
) -> Measured:
    log = runs / f"{name}.log"
    report(f"Running {LABELS[name]} (own process; log {log}) ...")
    measured = run_measured(command, log, env=env)
    report(
        f"  {measured.seconds:.1f} s, peak RSS {_bytes(measured.peak_rss_bytes)}"
        + ("" if measured.ok else f", exit {measured.returncode}")
    )
    return measured


def _run_fields(measured: Measured) -> dict[str, Any]:
    return {
        "status": "ok",
        "seconds": round(measured.seconds, 2),
        "peak_rss_bytes": measured.peak_rss_bytes,
        "log": str(measured.log),
    }


def _not_run(note: str) -> dict[str, Any]:
    return {"status": "skipped", "note": note}


def _killed(measured: Measured) -> str:
    return ": killed, out of memory?" if measured.returncode == -9 else ""


def stage_seconds(metadata: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage from a run's materialization metadata, `asset: stage` -> seconds.

    Reads an asset's `seconds` (a number, or a dict of stages) and its keys starting with
    `seconds_` or ending with `_seconds`.
    """
    stages: dict[str, float] = {}
    for asset, values in metadata.items():
        for key, value in values.items():
            if key == "seconds" and isinstance(value, dict):
                stages.update({f"{asset}: {k}": v for k, v in value.items() if _number(v)})
            elif key == "seconds" and _number(value):
                stages[asset] = value
            elif key.startswith("seconds_") and _number(value):
                stages[f"{asset}: {key.removeprefix('seconds_')}"] = value
            elif key.endswith("_seconds") and _number(value):
                stages[f"{asset}: {key.removesuffix('_seconds')}"] = value
    return stages


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _our_forecast(data: BenchData) -> pd.DataFrame:
    path = data.lake / "demand_forecast" / f"forecast_week={data.origin}" / "part-0.parquet"
    return pd.read_parquet(path, columns=[*KEY, "week", "forecast"])


def score_holdout(forecasts: dict[str, pd.DataFrame], holdout: pd.DataFrame) -> dict[str, Any]:
    """WAPE and bias of each forecast over the held-out SKU-weeks that every one of them covers.

    WAPE = sum |f - a| / sum a, bias = sum (f - a) / sum a, with a the actual (`ACTUAL`).
    """
    on = [*KEY, "week"]
    scored = holdout.assign(week=pd.to_datetime(holdout["week"]))
    for name, forecast in forecasts.items():
        columns = forecast[on].assign(week=pd.to_datetime(forecast["week"]))
        scored = scored.merge(columns.assign(**{name: forecast["forecast"].to_numpy()}), on=on)
    actual = scored[ACTUAL].astype("float64")
    total = actual.sum()
    accuracy = {}
    for name in forecasts:
        error = scored[name] - actual
        accuracy[name] = {
            "wape": float(error.abs().sum() / total) if total else math.nan,
            "bias": float(error.sum() / total) if total else math.nan,
        }
    skus = len(scored.drop_duplicates(KEY))
    return {"accuracy": accuracy, "skus": skus, "sku_weeks": len(scored)}


def _ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float] | None:
    """Our weekly run relative to the baseline: time and memory ratios, accuracy in points."""
    if baseline["status"] != "ok":
        return None
    return {
        "wall": round(ours["seconds"] / baseline["seconds"], 3),
        "peak_rss": round(ours["peak_rss_bytes"] / max(baseline["peak_rss_bytes"], 1), 3),
        "wape_points": round(100 * (ours["wape"] - baseline["wape"]), 2),
        "bias_points": round(100 * (ours["bias"] - baseline["bias"]), 2),
    }


def _quantile_trees(options: dict[str, Any]) -> str:
    trees = options.get("quantile_estimators")
    return "" if trees is None else f" (ours: {trees} per quantile model)"


def format_results(results: dict[str, Any]) -> str:
    """The results as a table for a terminal (and the README)."""
    o, d = results["options"], results["data"]
    lines = [
        "",
        f"bench scale: {o['skus']:,} SKUs x {o['weeks']} weeks of history, horizon "
        f"{o['horizon']}, origin {d['origin']}; trees {o['n_estimators']}"
        f"{_quantile_trees(o)}, threads {o['threads']}, {_compute_text(o)}",
        f"data: {d['folder']} ({'reused' if d['reused'] else 'generated'}; "
        f"{d['history_rows']:,} history rows)",
        "",
        f"{'':<28}{'wall':>10}{'peak RSS':>12}{'rows trained':>15}{'WAPE':>9}{'bias':>9}",
    ]
    for name, run in results["runs"].items():
        if run["status"] == "skipped":
            lines.append(f"{LABELS[name]:<28}  {run['note']}")
            continue
        lines.append(
            f"{LABELS[name]:<28}{run['seconds']:>8.1f} s{_bytes(run['peak_rss_bytes']):>12}"
            f"{_count(run.get('rows_trained')):>15}{_percent(run.get('wape')):>9}"
            f"{_percent(run.get('bias')):>9}" + ("  FAILED" if run["status"] == "failed" else "")
        )
    ratios = results["ours_vs_baseline"]
    if ratios:
        lines += [
            "",
            f"ours (weekly run) / baseline: wall {ratios['wall']:.2f}x, peak RSS "
            f"{ratios['peak_rss']:.2f}x, WAPE {ratios['wape_points']:+.1f} points, bias "
            f"{ratios['bias_points']:+.1f} points",
        ]
    scored = results["scored"]
    runs = results["runs"]
    counts = {
        "baseline": runs[BASELINE].get("forecast_skus"),
        "ours": runs[WEEKLY].get("forecast_skus"),
    }
    forecast_skus = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v is not None)
    note = (
        f"Accuracy over the {scored['sku_weeks']:,} held-out SKU-weeks ({scored['skus']:,} SKUs) "
        f"that every forecast shown covers (SKUs forecast: {forecast_skus}); {results['actual']}."
    )
    lines += ["", textwrap.fill(note, 100), "Seconds per stage:"]
    for name, run in results["runs"].items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run.get("stages", {}).items())
        if stages:
            lines.append(
                textwrap.fill(
                    stages, 100, initial_indent=f"  {LABELS[name]:<28}", subsequent_indent=" " * 30
                )
            )
    return "\n".join(lines)


def _compute_text(options: dict[str, Any]) -> str:
    """`engine sharded, workers 1`: the engine options given (`engine default` when none)."""
    given = {k: v for k, v in options["compute"].items() if v is not None}
    if "engine" not in given:
        given = {"engine": "default", **given}
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in given.items())


def _bytes(value: int) -> str:
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / (1 << 20):.0f} MiB"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
