"""A drop is read as one snapshot: a writer racing a reader never gets a partial drop used.

A writer replaces a week's two-file drop (version A, 40 SKUs) with version B (100 SKUs), each file
written in chunks with random pauses, as a slow upload does, in two ways:
- careless: the old `_SUCCESS` stays while the new files arrive, the marker is written again last
  (what the issue reproduced: a run read 391 of 1,071 rows and published);
- safe: the marker is deleted first, then the files, then the marker (docs/landing-contract.md).

Readers race it with varying timing: `Lake.read_drop_snapshot` many times per race, real
`sales_history` materializations, and whole weekly runs through the CLI's launcher. Every read
must be refused (changed while read, still arriving, no marker) or hold exactly A or exactly B,
whose identities are known: a mix of the two, or a file cut short, is never used. `-s` prints
the tally.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from weekly_graph import sales_history

from zeos_forecast.core.contract import LandingDataError
from zeos_forecast.drops import IDENTITY_FOOTER_KEY, MARKER_GRACE_SECONDS, drop_identity
from zeos_forecast.pipeline import launch
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import LANDING_SALES, Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
PROTOCOLS = ("careless", "safe")
LAKE_RACES = {"careless": 16, "safe": 30}
RUN_RACES = 4  # per protocol, real sales_history runs
WEEKLY_RACES = 2  # per protocol, whole weekly runs (validate, forecast, publish)
CHUNKS = 6
REFUSALS = (
    "changed while it was being read",
    "still arriving",
    "has no _SUCCESS marker",
    "No complete sales drop",
)
# When the writer starts after the reader, and its longest pause between two chunks: a snapshot
# read takes milliseconds; a run reads the drop about a second after it starts, a weekly run a
# few seconds, so their writers upload slowly enough to be caught in the middle.
START_DELAYS = {"snapshot": 0.02, "run": 1.5, "weekly": 4.0}
CHUNK_PAUSES = {"snapshot": 0.004, "run": 0.1, "weekly": 0.15}


def version(skus: int, units: float, week: dt.date = WEEK) -> dict[str, bytes]:
    """A drop's files as bytes: half the SKUs as parquet, half as CSV."""
    frame = pd.DataFrame(
        {
            "article_id": [f"A{i:05d}" for i in range(skus)],
            "merchant_id": "M1",
            "week": pd.Timestamp(week),
            "units_sold": units,
        }
    )
    half = skus // 2
    parquet = frame.iloc[:half].to_parquet(index=False)
    csv = frame.iloc[half:].assign(week=week.isoformat()).to_csv(index=False).encode()
    return {"part-0.parquet": parquet, "part-1.csv": csv}


def identity_of(files: dict[str, bytes]) -> str:
    return drop_identity(
        (name, len(data), hashlib.sha256(data).hexdigest()) for name, data in files.items()
    )


A = version(40, 1.0)
B = version(100, 7.0)
KNOWN = {identity_of(A): "A", identity_of(B): "B"}


def put(folder: Path, files: dict[str, bytes]) -> None:
    """A complete drop written at once: the files, then the marker."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "_SUCCESS").touch()


def redrop(
    folder: Path,
    protocol: str,
    delay: float,
    pause: float,
    rng: random.Random,
    done: threading.Event,
) -> None:
    """Replaces the drop in `folder` with B after `delay`, chunk by chunk with random pauses."""
    time.sleep(delay)
    if protocol == "safe":
        (folder / "_SUCCESS").unlink()
    for name, data in B.items():
        size = -(-len(data) // CHUNKS)
        with open(folder / name, "wb") as out:
            for start in range(0, len(data), size):
                out.write(data[start : start + size])
                out.flush()
                time.sleep(rng.uniform(0, pause))
    time.sleep(rng.uniform(0, 0.01))
    (folder / "_SUCCESS").touch()
    done.set()


def start_redrop(folder: Path, protocol: str, rng: random.Random, reader: str) -> threading.Event:
    """Starts the writer after a random delay; set once the new drop is complete."""
    if protocol == "careless":
        time.sleep(MARKER_GRACE_SECONDS + 0.05)  # the old marker is a real, older one
    done = threading.Event()
    delay = rng.uniform(0, START_DELAYS[reader])
    writer = (folder, protocol, delay, CHUNK_PAUSES[reader], rng, done)
    threading.Thread(target=redrop, args=writer, daemon=True).start()
    return done


def classify(error: Exception) -> str:
    text = str(error)
    assert any(reason in text for reason in REFUSALS), text
    return "refused"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_writer_racing_snapshot_reads_never_gets_a_partial_drop_read(protocol, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    folder = Path(lake.sales_drop_dir(WEEK))
    rng = random.Random(f"snapshot-{protocol}")
    outcomes: Counter[str] = Counter()
    for _ in range(LAKE_RACES[protocol]):
        shutil.rmtree(folder, ignore_errors=True)
        put(folder, A)
        done = start_redrop(folder, protocol, rng, "snapshot")
        deadline = time.monotonic() + 30  # bounded: the writer takes well under a second
        while not done.is_set() and time.monotonic() < deadline:
            try:
                snapshot = lake.read_drop_snapshot(LANDING_SALES, WEEK)
            except (LandingDataError, FileNotFoundError) as error:
                outcomes[classify(error)] += 1
                continue
            outcomes[KNOWN.get(snapshot.identity, "partial")] += 1
            rows = sum(len(f.frame) for f in snapshot.files)
            assert rows == {"A": 40, "B": 100}.get(KNOWN.get(snapshot.identity, ""), -1)
        assert done.is_set()
        outcomes["B, after the race"] += lake.read_drop_snapshot(LANDING_SALES, WEEK).identity in {
            identity_of(B)
        }

    print(f"\n{protocol}: {LAKE_RACES[protocol]} races, snapshot reads: {dict(outcomes)}")
    assert outcomes["partial"] == 0
    assert outcomes["refused"] > 0  # the races did overlap the writes
    assert outcomes["B, after the race"] == LAKE_RACES[protocol]


def materialize_week(root: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [sales_history],
        partition_key=WEEK.isoformat(),
        instance=instance,
        resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
        raise_on_error=False,
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_writer_racing_sales_history_runs_never_gets_a_partial_drop_validated(
    protocol, tmp_path, instance
):
    root = tmp_path / "lake"
    lake = Lake(str(root))
    folder = Path(lake.sales_drop_dir(WEEK))
    rng = random.Random(f"runs-{protocol}")
    outcomes: Counter[str] = Counter()
    for _ in range(RUN_RACES):
        shutil.rmtree(folder, ignore_errors=True)
        put(folder, A)
        assert materialize_week(root, instance).success
        done = start_redrop(folder, protocol, rng, "run")
        result = materialize_week(root, instance)
        footer = lake.partition_footer("sales_history", "week", WEEK)
        written = KNOWN.get(footer[IDENTITY_FOOTER_KEY], "partial")
        rows = lake.partition_rows("sales_history", "week", WEEK)
        assert rows == {"A": 40, "B": 100}.get(written, -1)
        if result.success:
            outcomes[f"validated {written}"] += 1
        else:
            [failure] = result.get_step_failure_events()
            outcomes[classify(failure.step_failure_data.user_failure_data.description)] += 1
            assert written == "A"  # the partition from before the race, untouched
        assert done.wait(30)  # bounded; the next race starts from a quiet drop
    print(f"\n{protocol}: {RUN_RACES} sales_history runs raced: {dict(outcomes)}")
    assert not any("partial" in outcome for outcome in outcomes)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_writer_racing_weekly_runs_never_gets_a_partial_drop_published(
    protocol, landing_factory, tmp_path, fast_forecast
):
    template = landing_factory(30, 12, WEEK, seed=9)
    rng = random.Random(f"weekly-{protocol}")
    outcomes: Counter[str] = Counter()
    window = {"history_weeks": 12}
    for race in range(WEEKLY_RACES):
        root = tmp_path / f"lake-{race}"
        shutil.copytree(template, root)
        lake = Lake(str(root))
        folder = Path(lake.sales_drop_dir(WEEK))
        shutil.rmtree(folder)
        put(folder, A)
        with dg.instance_for_test() as instance:
            done = start_redrop(folder, protocol, rng, "weekly")
            try:
                launch.forecast_week(WEEK, str(root), instance, fast_forecast, window, report=None)
            except launch.RunFailed as error:
                outcomes[classify(error)] += 1
                assert not (root / "published_forecast").exists()
                continue
            finally:
                assert done.wait(30)
        footer = lake.partition_footer("sales_history", "week", WEEK)
        written = KNOWN.get(footer[IDENTITY_FOOTER_KEY], "partial")
        outcomes[f"published from {written}"] += 1
        published = lake.read_partition("published_forecast", "forecast_week", WEEK)
        assert len(published.groupby(["article_id", "merchant_id"])) > 0
    print(f"\n{protocol}: {WEEKLY_RACES} weekly runs raced: {dict(outcomes)}")
    assert not any("partial" in outcome for outcome in outcomes)
