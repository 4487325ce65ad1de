"""`zeos-forecast bench backfill` end to end on a tiny size, through the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zeos_forecast.bench.backfill import BackfillOptions, prepare_backfill_data

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

CONSOLE_SCRIPT = Path(sys.executable).with_name("zeos-forecast")
WEEKS, HISTORY, BURST = 2, 12, 3
TINY = [
    "--skus", "80", "--weeks", str(WEEKS), "--history-weeks", str(HISTORY),
    "--burst", str(BURST), "--n-estimators", "10", "--threads", "1",
]  # fmt: skip


def bench(data: Path) -> str:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "bench", "backfill", *TINY, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def landed_weeks(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "lake" / "landing" / "sales").iterdir())


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, str, dict]:
    data = tmp_path_factory.mktemp("bench") / "backfill"
    out = bench(data)
    return data, out, json.loads((data / "results.json").read_text())


def test_the_table_shows_the_backlog_the_backfill_and_the_burst(ran):
    _, out, results = ran
    first, last = results["data"]["burst"]
    assert f"backlog validation ({HISTORY + WEEKS} weeks)" in out
    assert f"backfill ({WEEKS} weeks, one run each)" in out
    assert "peak RSS by week: first (" in out and "MiB per week" in out
    ticks = [line.split("requested: ")[1] for line in out.splitlines() if "  tick: " in line]
    assert ticks == [
        f"sales_history {first} .. {last} ({BURST} weeks)",
        f"forecast {last}",
        "nothing",
    ]
    assert f"weeks of the burst validated: {BURST} of {BURST}" in out


def test_every_backfilled_week_has_its_time_and_peak_memory(ran):
    _, _, results = ran
    backfill = results["runs"]["backfill"]
    assert len(backfill["weeks"]) == WEEKS
    for week in backfill["weeks"]:
        assert week["seconds"] > 0 and week["skus_scored"] > 0
        assert 50 << 20 < week["peak_rss_bytes"] <= backfill["peak_rss_bytes"]


def test_the_sensor_runs_are_measured_one_by_one(ran):
    _, _, results = ran
    steps = results["runs"]["sensor"]["steps"]
    assert [s["kind"] for s in steps] == ["tick", "run", "tick", "run", "tick"]
    runs = [s for s in steps if s["kind"] == "run"]
    assert all(s["run_id"] and s["peak_rss_bytes"] > 50 << 20 for s in runs)


def test_the_burst_lands_for_the_run_and_is_held_back_again_when_the_data_is_reused(ran):
    data, _, results = ran
    burst = sorted(p.name for p in (data / "burst").iterdir())
    assert len(burst) == BURST
    assert set(burst) <= set(landed_weeks(data))  # they landed during the run
    options = BackfillOptions(skus=80, weeks=WEEKS, history_weeks=HISTORY, burst=BURST, data=data)

    again = prepare_backfill_data(options, report=lambda line: None)

    assert again.data.reused
    assert not set(burst) & set(landed_weeks(data))
    assert len(landed_weeks(data)) == results["data"]["weeks"] - BURST
    assert [f"week={week}" for week in again.burst_weeks] == burst
