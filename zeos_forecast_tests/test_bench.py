"""`zeos-forecast bench scale`: the real command on a tiny size, its scoring, its measurements."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from zeos_forecast.bench.measure import run_measured
from zeos_forecast.bench.scale import score_holdout, stage_seconds

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

CONSOLE_SCRIPT = Path(sys.executable).with_name("zeos-forecast")
TINY = ["--skus", "200", "--weeks", "60", "--horizon", "4", "--n-estimators", "10"]
ROW_LABELS = ("baseline (plain mlforecast)", "ours: backlog ingest", "ours: weekly run")
PERCENT = re.compile(r"(-?\d+\.\d)%")


def bench(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "bench", "scale", *TINY, "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def table_row(output: str, label: str) -> str:
    rows = [line for line in output.splitlines() if line.startswith(label)]
    assert len(rows) == 1, output
    return rows[0]


def test_bench_scale_prints_both_sides_with_finite_accuracy_and_then_reuses_its_data(tmp_path):
    data = tmp_path / "bench"

    out = bench("--data", str(data)).stdout

    assert "Generating 200 SKUs x 64 weeks" in out
    for label in ("baseline (plain mlforecast)", "ours: weekly run"):
        wape, bias = (float(p) for p in PERCENT.findall(table_row(out, label)))
        assert math.isfinite(wape) and wape > 0 and math.isfinite(bias)
    assert " s " in table_row(out, "ours: backlog ingest")
    assert "ours (weekly run) / baseline: wall" in out
    assert "actual = true_demand" in out
    results = json.loads((data / "results.json").read_text())
    runs = results["runs"]
    assert all(runs[name]["status"] == "ok" for name in runs)
    assert runs["baseline"]["rows_trained"] > 0 and runs["ours_weekly"]["rows_trained"] > 0
    assert runs["ours_weekly"]["peak_rss_bytes"] > 50 << 20
    assert "sales_history" in runs["ours_backlog"]["stages"]
    assert results["scored"]["sku_weeks"] == 4 * results["scored"]["skus"] > 0
    assert (data / "lake" / "demand_forecast").is_dir()

    marker = (data / "data.json").stat().st_mtime_ns
    again = bench("--data", str(data), "--data-only").stdout

    assert f"Reusing the data in {data}" in again
    assert "Generating" not in again
    assert (data / "data.json").stat().st_mtime_ns == marker

    engine = ("--engine", "sharded", "--workers", "1")  # `auto` runs 200 SKUs in memory
    ours_only = bench("--data", str(data), "--skip-baseline", "--reuse-backlog", *engine).stdout

    assert "reused: sales_history of an earlier run" in table_row(ours_only, "ours: backlog ingest")
    assert "engine sharded, workers 1" in ours_only
    rerun = json.loads((data / "results.json").read_text())
    assert rerun["options"]["compute"] == {"engine": "sharded", "workers": 1}
    metadata = json.loads((data / "runs" / "ours_weekly.json").read_text())
    assert metadata["demand_features"]["engine"] == "sharded"
    assert " s " in table_row(ours_only, "ours: weekly run")
    weekly_log = (data / "runs" / "ours_weekly.log").read_text()
    origin = results["data"]["origin"]
    # Only the origin's own drop is new: validated in the forecast's run, not the 59 before it.
    assert f"Validating the week's drop, building features and forecast for {origin}" in weekly_log
    assert "Validating sales_history" not in weekly_log
    assert "Generating" not in ours_only


def test_wape_and_bias_are_scored_on_the_sku_weeks_every_forecast_covers():
    week = pd.Timestamp("2026-11-23")
    holdout = pd.DataFrame(
        {
            "article_id": ["A", "A", "B"],
            "merchant_id": ["M", "M", "M"],
            "week": [week, week + pd.Timedelta(weeks=1), week],
            "true_demand": [10.0, 0.0, 30.0],
        }
    )
    ours = holdout.drop(columns="true_demand").assign(forecast=[12.0, 1.0, 24.0])
    baseline = ours.iloc[[0, 2]].assign(forecast=[10.0, 40.0])  # no forecast of A's 2nd week

    scored = score_holdout({"ours": ours, "baseline": baseline}, holdout)

    assert scored["sku_weeks"] == 2 and scored["skus"] == 2
    assert scored["accuracy"]["ours"] == pytest.approx({"wape": 8 / 40, "bias": -4 / 40})
    assert scored["accuracy"]["baseline"] == pytest.approx({"wape": 10 / 40, "bias": 10 / 40})


def test_stage_seconds_reads_every_spelling_of_timings_in_run_metadata():
    metadata = {
        "sales_history": {"seconds": 1.5, "rows": 10},
        "demand_forecast": {"seconds_fit": 2.0, "predict_seconds": 0.5, "seconds_note": "x"},
        "demand_features": {"seconds": {"read": 0.25, "build": 1.0}},
    }

    assert stage_seconds(metadata) == {
        "sales_history": 1.5,
        "demand_forecast: fit": 2.0,
        "demand_forecast: predict": 0.5,
        "demand_features: read": 0.25,
        "demand_features: build": 1.0,
    }


def test_peak_memory_is_the_sum_over_the_whole_process_tree(tmp_path):
    grandchild = "import time; block = bytearray(300 << 20); time.sleep(1.5)"
    child = (
        "import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    )

    measured = run_measured([sys.executable, "-c", child], tmp_path / "run.log")

    assert measured.ok
    assert measured.peak_rss_bytes > 300 << 20
    assert measured.seconds >= 1.5
