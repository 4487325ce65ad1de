"""Shared fixtures for the Dagster layer, launcher, CLI and demo tests.

Landing data is generated with the real generator and written with `write_landing`, so every
test reads drops exactly as a user's would arrive. A module generates its landing zone once
(`landing_factory`) and copies it (`lake_copy`) wherever a test modifies the lake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as pads
import pytest

from zeos_forecast.datasets.landing import write_landing
from zeos_forecast.datasets.synthetic import generate_panel
from zeos_forecast.storage import Lake


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs on every core (`-n auto` in setup.cfg): OpenMP threads of LightGBM that
    wait must sleep, not spin, or the spinning threads of one test worker starve those of the
    other (under 1 tree/s on 2 cores). Set before any test worker loads LightGBM."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end files first, then the slow ones, then the rest, each group in file order.

    xdist hands out whole files in this order (`--no-loadscope-reorder` in setup.cfg; its own
    order puts files with fewer tests last, and an end-to-end file of three tests takes minutes):
    the long files start at once and the quick ones fill the other worker at the end.
    """
    items.sort(
        key=lambda item: (
            item.get_closest_marker("e2e") is None,
            item.get_closest_marker("slow") is None,
        )
    )


# Public retail data lives beside the checkout (`../shared/data`), never inside the project.
SHARED_DATA = Path(
    os.environ.get("ZEOS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
ACTIVE_WEEKS = 13  # ForecastSettings().active_weeks: SKUs with a row this recently are forecast


def make_landing(root: Path, skus: int, weeks: int, last_week: dt.date, seed: int = 0) -> Path:
    """Writes generated drops (and article/merchant metadata) into `root`'s landing zone."""
    write_landing(generate_panel(skus, weeks, last_week, seed=seed), Lake(str(root)))
    return root


@pytest.fixture(scope="module")
def landing_factory(tmp_path_factory) -> Callable[..., Path]:
    """`landing_factory(skus, weeks, last_week, seed=0)`: a fresh lake holding only landing data."""

    def factory(skus: int, weeks: int, last_week: dt.date, seed: int = 0) -> Path:
        return make_landing(tmp_path_factory.mktemp("lake"), skus, weeks, last_week, seed)

    return factory


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public datasets (`$ZEOS_SHARED_DATA`, default `../shared/data`)."""
    if not (SHARED_DATA / "dominicks_oj").is_dir() or not (SHARED_DATA / "vn2").is_dir():
        pytest.fail(
            f"The shared datasets are not at {SHARED_DATA}: set ZEOS_SHARED_DATA to the folder "
            "holding dominicks_oj/ and vn2/."
        )
    return SHARED_DATA


@pytest.fixture
def lake_copy(tmp_path) -> Callable[[Path], Path]:
    """`lake_copy(template)`: a private copy of a lake (mtimes preserved) for a test to modify."""
    counter = iter(range(1_000))

    def copy(template: Path) -> Path:
        target = tmp_path / f"lake-{next(counter)}"
        shutil.copytree(template, target)
        return target

    return copy


@pytest.fixture
def instance():
    """A real, throwaway Dagster instance (sqlite storage under a temp dir)."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """Points DAGSTER_HOME at an empty temp dir (used by `launch.dagster_instance()`, the CLI)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def fast_forecast() -> dict:
    """Forecast config that trains in about a second: few trees and one thread.

    One thread because the machine is shared: LightGBM's thread pool slows down badly when
    another process holds a core.
    """
    return {"n_estimators": 15, "horizon": 6, "threads": 1}


@pytest.fixture(scope="session")
def fast_window() -> dict:
    """Window config matching the small generated panels."""
    return {"history_weeks": 60}


@pytest.fixture(scope="session")
def digests() -> Callable[[Path], dict[str, str]]:
    """`digests(root)`: sha256 of every file under `root`, by relative path."""
    return file_digests


@pytest.fixture(scope="session")
def forecast_of() -> Callable[[Path, dt.date], pd.DataFrame]:
    """`forecast_of(root, week)`: the forecast partition of `week`, sorted by SKU and horizon."""
    return read_forecast


@pytest.fixture(scope="session")
def hive_dataset() -> Callable[[Path, str], pd.DataFrame]:
    """`hive_dataset(root, name)`: a derived dataset read with Hive partitioning."""
    return read_hive_dataset


@pytest.fixture(scope="session")
def active_skus_of() -> Callable[..., set[tuple[str, str]]]:
    """`active_skus_of(root, week)`: SKUs with a landing row in the 13 weeks ending at `week`."""
    return active_skus


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read_forecast(root: Path, week: dt.date) -> pd.DataFrame:
    """The forecast partition of `week`, sorted by SKU and horizon."""
    table = Lake(str(root)).read_partition("demand_forecast", "forecast_week", week)
    return table.sort_values(["article_id", "merchant_id", "horizon"], ignore_index=True)


def read_hive_dataset(root: Path, dataset: str) -> pd.DataFrame:
    """A derived dataset through `pyarrow.dataset` with Hive partitioning, as other engines do."""
    return (
        pads.dataset(root / dataset, format="parquet", partitioning="hive").to_table().to_pandas()
    )


def active_skus(
    root: Path, week: dt.date, active_weeks: int = ACTIVE_WEEKS
) -> set[tuple[str, str]]:
    """SKUs with a row in the landing drops of the `active_weeks` weeks ending at `week`."""
    keys: set[tuple[str, str]] = set()
    for offset in range(active_weeks):
        folder = root / "landing" / "sales" / f"week={week - dt.timedelta(weeks=offset)}"
        for file in folder.glob("*.parquet"):
            frame = pd.read_parquet(file, columns=["article_id", "merchant_id"])
            keys.update(zip(frame["article_id"], frame["merchant_id"], strict=True))
    return keys
