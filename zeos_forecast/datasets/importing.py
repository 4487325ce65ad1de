"""Shared by the importers of public datasets: finding source files, writing a landing zone.

An importer turns its source files into `LandingFrames` (a pure step, testable without a lake),
then `import_dataset` writes them the way a user's uploads arrive: article and merchant metadata,
the plan drops, then one sales drop per week, each with its `_SUCCESS` marker. Plans go before
sales so that a run triggered by a sales marker already finds the plans of the weeks after it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.contract import KEY_COLUMNS
from ..core.progress import Progress, Report
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, LANDING_PLANS, LANDING_SALES, Lake

__all__ = [
    "SHARED_DATA_VAR",
    "ImportSummary",
    "LandingFrames",
    "default_source",
    "import_dataset",
    "require_columns",
    "require_files",
]

# Folder holding the shared public datasets (`dominicks_oj/`, `vn2/`), never copied into the lake.
SHARED_DATA_VAR = "ZEOS_SHARED_DATA"
DEFAULT_SHARED_DATA = Path("..") / "shared" / "data"


@dataclass(frozen=True)
class LandingFrames:
    """A dataset mapped onto the landing contract, in memory.

    Attributes:
        sales: One row per SKU-week with data: `article_id`, `merchant_id` (str), `week`
            (datetime64, a Monday), `units_sold` and the optional and extra numeric columns.
        plans: Known future inputs per SKU-week (no `units_sold`), or None when there are none.
        articles: Article metadata, one row per `article_id`.
        merchants: Merchant metadata, one row per `merchant_id`.
    """

    sales: pd.DataFrame
    plans: pd.DataFrame | None
    articles: pd.DataFrame
    merchants: pd.DataFrame


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote.

    Attributes:
        dataset: The dataset's name, e.g. "VN2".
        source: The folder the source files were read from.
        landing: URI of the lake's landing zone.
        rows: Sales rows written.
        skus: Distinct (article_id, merchant_id) pairs in the sales.
        weeks: Sales drops written (one per week).
        first_week: Monday of the first sales drop.
        last_week: Monday of the last sales drop.
        plan_weeks: Plan drops written.
        articles: Rows of article metadata.
        merchants: Rows of merchant metadata.
        seconds: Wall time of reading, mapping and writing.
    """

    dataset: str
    source: str
    landing: str
    rows: int
    skus: int
    weeks: int
    first_week: dt.date
    last_week: dt.date
    plan_weeks: int
    articles: int
    merchants: int
    seconds: float

    def describe(self) -> str:
        """One paragraph for a person: rows, SKUs, weeks, plans and where they went."""
        plans = f"{self.plan_weeks} plan drops" if self.plan_weeks else "no plan drops"
        return (
            f"Imported {self.dataset} from {self.source}: {self.rows:,} sales rows, "
            f"{self.skus:,} SKUs, {self.weeks} weeks ({self.first_week}..{self.last_week}), "
            f"{plans}, {self.articles:,} articles, {self.merchants:,} merchants, "
            f"to {self.landing} in {self.seconds:.1f} s."
        )


def default_source(folder: str) -> Path:
    """`$ZEOS_SHARED_DATA/<folder>`, else `../shared/data/<folder>` (from the working directory)."""
    root = os.environ.get(SHARED_DATA_VAR)
    return (Path(root) if root else DEFAULT_SHARED_DATA) / folder


def require_files(src: Path, names: Sequence[str], dataset: str, folder: str) -> list[Path]:
    """The paths of `names` under `src`.

    Args:
        src: The folder given as `--src`.
        names: The source files the importer reads.
        dataset: The dataset's name, for the message.
        folder: The dataset's folder under the shared data (`default_source`), for the message.

    Raises:
        FileNotFoundError: naming the first missing file and what to pass as `--src`.
    """
    paths = [Path(src) / name for name in names]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{dataset}: expected the source file {path}, which does not exist. Pass "
                f"--src DIR, the folder holding {' and '.join(names)} (by default "
                f"${SHARED_DATA_VAR}/{folder}, else {DEFAULT_SHARED_DATA / folder})."
            )
    return paths


def require_columns(frame: pd.DataFrame, columns: Sequence[str], file: str) -> None:
    """Raises ValueError naming `file` and the columns of `columns` that `frame` lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{file}: missing columns {missing} (found {list(frame.columns)}).")


def import_dataset(
    dataset: str,
    src: Path,
    read: Callable[[Path], LandingFrames],
    lake: Lake,
    report: Report | None = None,
) -> ImportSummary:
    """Reads a dataset with `read(src)` and writes it into `lake`'s landing zone.

    Args:
        dataset: Name used in messages and the summary.
        src: Folder of the source files.
        read: The importer's pure step, source folder to `LandingFrames`.
        lake: Where to write.
        report: Where progress messages go (e.g. `print`); None for silence.

    Returns:
        The summary of what was written.

    Raises:
        ValueError: when the source holds no sales rows or a week is not a Monday.
    """
    started = time.perf_counter()
    frames = read(Path(src))
    sales = frames.sales
    if sales.empty:
        raise ValueError(f"{dataset}: the source files in {src} hold no sales rows.")
    for name, frame in (("sales", sales), ("plans", frames.plans)):
        if frame is not None:
            _check_mondays(frame, f"{dataset} {name}")
    lake.write_landing_table(LANDING_ARTICLES, "articles.parquet", frames.articles)
    lake.write_landing_table(LANDING_MERCHANTS, "merchants.parquet", frames.merchants)
    plan_weeks = 0
    if frames.plans is not None:
        step = f"{dataset}: writing plan drops"
        plan_weeks = _write_drops(lake, frames.plans, LANDING_PLANS, step, report)
    weeks = _write_drops(lake, sales, LANDING_SALES, f"{dataset}: writing sales drops", report)
    return ImportSummary(
        dataset=dataset,
        source=str(src),
        landing=lake.uri_of("landing"),
        rows=len(sales),
        skus=len(sales.drop_duplicates(list(KEY_COLUMNS))),
        weeks=weeks,
        first_week=sales["week"].min().date(),
        last_week=sales["week"].max().date(),
        plan_weeks=plan_weeks,
        articles=len(frames.articles),
        merchants=len(frames.merchants),
        seconds=time.perf_counter() - started,
    )


def _write_drops(
    lake: Lake, frame: pd.DataFrame, folder: str, step: str, report: Report | None
) -> int:
    """Writes one drop per week of `frame` into `folder`; returns the number of drops."""
    groups = frame.groupby("week", sort=True)
    progress = Progress(step, groups.ngroups, "weeks", report)
    for week, drop in groups:
        lake.write_landing_drop(week.date(), drop.assign(week=drop["week"].dt.date), folder=folder)
        progress.advance()
    return groups.ngroups


def _check_mondays(frame: pd.DataFrame, what: str) -> None:
    """Raises ValueError when a week of `frame` is not a Monday (drops are named by Mondays)."""
    weeks = pd.DatetimeIndex(frame["week"].unique())
    not_monday = weeks[weeks.dayofweek != 0]
    if len(not_monday):
        raise ValueError(
            f"{what}: {len(not_monday)} weeks are not Mondays, e.g. {not_monday[0].date()}; "
            "weeks are named by their Monday."
        )
