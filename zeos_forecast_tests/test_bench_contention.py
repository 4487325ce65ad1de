"""`bench contention`: LightGBM training with another process busy on one of the cores."""

from __future__ import annotations

import os

import psutil
import pytest

from zeos_forecast.bench.contention import (
    ContentionOptions,
    format_contention,
    run_contention,
    spinning,
)

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test


def test_the_spinning_processes_are_stopped_when_the_block_ends():
    with spinning(2) as spinners:
        assert all(psutil.pid_exists(s.pid) and s.poll() is None for s in spinners)

    assert all(s.poll() is not None for s in spinners)


def test_the_table_gives_the_share_of_its_quiet_throughput_each_side_keeps():
    results = {
        "options": {"skus": 300, "weeks": 104, "busy": 1},
        "machine": {"cpus": 2},
        "sides": {"baseline": "baseline", "ours": "ours"},
        "runs": {
            "baseline": {
                "quiet": {"training_seconds": 10.0, "run_seconds": 20.0},
                "busy": {"training_seconds": 50.0, "run_seconds": 60.0},
            },
            "ours": {
                "quiet": {"training_seconds": 10.0, "run_seconds": 20.0},
                "busy": {"training_seconds": 12.5, "run_seconds": 22.5},
            },
        },
    }

    table = format_contention(results)

    assert "| baseline | 10.0 | 50.0 | 20% | 20.0 | 60.0 |" in table
    assert "| ours | 10.0 | 12.5 | 80% | 20.0 | 22.5 |" in table


def test_a_busy_count_that_leaves_no_core_free_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one of the"):
        run_contention(ContentionOptions(busy=os.cpu_count() or 1, data=tmp_path))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs a core to keep busy and one free")
def test_bench_contention_runs_each_side_quiet_and_busy_through_the_cli(tmp_path):
    printed: list[str] = []
    options = ContentionOptions(skus=20, weeks=30, horizon=4, data=tmp_path / "data")

    results = run_contention(options, report=printed.append)

    for side in ("baseline", "ours"):
        for load in ("quiet", "busy"):
            figures = results["runs"][side][load]
            assert figures["training_seconds"] > 0
            assert figures["run_seconds"] >= figures["training_seconds"]
            assert figures["train_rows"] > 0
    assert "throughput kept" in printed[-1]
    assert (tmp_path / "data" / "contention.json").is_file()
    spinners = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "while True: pass" in " ".join(p.info["cmdline"] or [])
    ]
    assert spinners == []
