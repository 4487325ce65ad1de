"""Landing data is the regular files inside the landing zone: links that leave it are refused.

A drop (or a metadata folder) holding a symbolic link to a file outside the landing zone (a CSV
elsewhere, `/etc/passwd`), a FIFO, a folder named like a data file, or a `_SUCCESS` folder instead
of a marker file: the CLI exits 1 naming the entry and why, before any run; a run refuses it
the same way; the sensor leaves the week alone; nothing is written and the landing zone stays as
it was. A link whose target stays inside the landing zone is read like a file.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from weekly_graph import landing_sensor, sales_history

from zeos_forecast.cli import main
from zeos_forecast.core.contract import LandingDataError
from zeos_forecast.pipeline.landing_zone import LocalLandingZone
from zeos_forecast.pipeline.resources import ComputeResource, LakeResource
from zeos_forecast.storage import LANDING_ARTICLES, LANDING_SALES, Lake

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

WEEK = dt.date(2025, 6, 2)
BAD_WEEK = WEEK - dt.timedelta(weeks=2)
SKUS, WEEKS = 12, 8


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, WEEKS, WEEK, seed=3)


def outside_csv(tmp_path: Path) -> Path:
    """A CSV of valid rows for BAD_WEEK, outside the lake."""
    path = tmp_path / "elsewhere" / "sales.csv"
    path.parent.mkdir()
    rows = {"article_id": ["AOUT1"], "merchant_id": ["M1"], "week": [BAD_WEEK.isoformat()]}
    pd.DataFrame({**rows, "units_sold": [3]}).to_csv(path, index=False)
    return path


def link_out(drop: Path, tmp_path: Path) -> str:
    (drop / "extra.csv").symlink_to(outside_csv(tmp_path))
    return "extra.csv"


def link_to_passwd(drop: Path, tmp_path: Path) -> str:
    (drop / "passwd.csv").symlink_to("/etc/passwd")
    return "passwd.csv"


def relative_link_climbing_out(drop: Path, tmp_path: Path) -> str:
    outside = outside_csv(tmp_path)  # beside the lake: <tmp>/lake-0/landing/sales/week=W/
    (drop / "nested.csv").symlink_to(Path("../../../..") / outside.relative_to(tmp_path))
    return "nested.csv"


def fifo(drop: Path, tmp_path: Path) -> str:
    os.mkfifo(drop / "late.csv")  # opening it would wait for a writer forever
    return "late.csv"


def folder_named_like_data(drop: Path, tmp_path: Path) -> str:
    (drop / "more.parquet").mkdir()
    return "more.parquet"


def success_folder(drop: Path, tmp_path: Path) -> str:
    (drop / "_SUCCESS").unlink()
    (drop / "_SUCCESS").mkdir()
    return "_SUCCESS"


BAD_ENTRIES: dict[str, tuple[Callable[[Path, Path], str], str]] = {
    "link out of the landing zone": (link_out, "outside the landing zone"),
    "link to /etc/passwd": (link_to_passwd, "outside the landing zone"),
    "relative link climbing out": (relative_link_climbing_out, "outside the landing zone"),
    "FIFO": (fifo, "not a regular file"),
    "folder named like a data file": (folder_named_like_data, "is a folder"),
    "_SUCCESS folder": (success_folder, "_SUCCESS is a folder, not a file"),
}


def drop_folder(root: Path, week: dt.date = BAD_WEEK) -> Path:
    return Path(Lake(str(root)).sales_drop_dir(week))


def landing_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under landing/, with its kind and (for files) size, without following links."""
    state = {}
    for path in sorted((root / "landing").rglob("*")):
        info = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        state[str(path.relative_to(root))] = (kind, info.st_size if kind == "file" else 0)
    return state


def bounded(call: Callable[[], object], seconds: float = 60) -> object:
    """`call()` in a thread, failing the test if it has not returned within `seconds`."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked: a FIFO or a link was opened"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


@pytest.mark.parametrize("entry", list(BAD_ENTRIES))
def test_the_cli_refuses_a_drop_with_the_entry_naming_it_before_any_run(
    entry, landing, lake_copy, tmp_path, dagster_home, capsys
):
    root = lake_copy(landing)
    make, reason = BAD_ENTRIES[entry]
    name = make(drop_folder(root), tmp_path)
    before = landing_state(root)
    args = ["forecast", "--lake", str(root), "--week", WEEK.isoformat(), "--history-weeks", "8"]

    code = bounded(lambda: main([*args, "--n-estimators", "5"]))

    err = capsys.readouterr().err
    assert code == 1
    assert reason in err
    assert str(drop_folder(root) / name) in err
    assert not (root / "sales_history").exists()  # refused before any run
    assert landing_state(root) == before
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert list(instance.get_runs()) == []


@pytest.mark.parametrize("entry", list(BAD_ENTRIES))
def test_a_run_refuses_a_drop_with_the_entry_and_writes_nothing(
    entry, landing, lake_copy, tmp_path, instance
):
    root = lake_copy(landing)
    make, reason = BAD_ENTRIES[entry]
    make(drop_folder(root), tmp_path)

    result = bounded(
        lambda: dg.materialize(
            [sales_history],
            partition_key=BAD_WEEK.isoformat(),
            instance=instance,
            resources={"lake": LakeResource(root=str(root)), "compute": ComputeResource()},
            raise_on_error=False,
        )
    )

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert reason in failure.step_failure_data.user_failure_data.description
    assert not (root / "sales_history").exists()


@pytest.mark.parametrize("entry", list(BAD_ENTRIES))
def test_the_sensor_leaves_a_drop_with_the_entry_alone(entry, landing, lake_copy, tmp_path):
    root = lake_copy(landing)
    BAD_ENTRIES[entry][0](drop_folder(root), tmp_path)

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, resources={"landing": LocalLandingZone(root=str(root))}
        )
        result = bounded(lambda: landing_sensor(context))

    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ]
    assert ranges  # the other weeks are validated
    assert all(not first <= BAD_WEEK.isoformat() <= last for first, last in ranges)


def test_a_link_whose_target_stays_inside_the_landing_zone_is_read(landing, lake_copy, tmp_path):
    root = lake_copy(landing)
    exports = root / "landing" / "exports"
    exports.mkdir()
    source = outside_csv(tmp_path)
    (exports / "sales.csv").write_bytes(source.read_bytes())
    (drop_folder(root) / "extra.csv").symlink_to(exports / "sales.csv")
    (drop_folder(root) / "_SUCCESS").touch()  # files first, the marker last

    files = Lake(str(root)).read_drop(LANDING_SALES, BAD_WEEK)

    assert sorted(Path(f.path).name for f in files) == ["extra.csv", "part-0.parquet"]
    assert Lake(str(root)).sales_drops()[BAD_WEEK].ready


def test_a_metadata_file_linked_from_outside_the_landing_zone_is_refused(
    landing, lake_copy, tmp_path
):
    root = lake_copy(landing)
    outside = tmp_path / "articles.csv"
    outside.write_text("article_id,category\nA0000001,shoes\n")
    (root / LANDING_ARTICLES / "more.csv").symlink_to(outside)

    with pytest.raises(LandingDataError, match="outside the landing zone"):
        Lake(str(root)).read_metadata(LANDING_ARTICLES)
