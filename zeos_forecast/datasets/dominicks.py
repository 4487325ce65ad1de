"""Dominick's orange juice (bayesm `orangeJuice`, weeks 40–135) mapped onto the landing contract.

| Source | Landing |
|---|---|
| `brand` (1–11) | `article_id` ("1".."11"), with `brand_name`, `size_oz`, `maker` in articles |
| `store` | `merchant_id`, with the `storedemo` demographics (lower-cased) in merchants |
| `week` n | `week`: the Monday on or before its start, Thursday 1989-09-14 + 7 (n − 1) days |
| `exp(logmove)` | `units_sold` (whole units; checked, then rounded) |
| `price{brand}` | `price` (own price) |
| own price / mean of `price1..price11` | `relative_price` (the store-week's cross-price position) |
| `deal`, `feat` | `deal`, `feat` (extra numeric columns: dynamic features) |

A Dominick's week runs Thursday..Wednesday; the landing names weeks by a Monday. Each week is
labelled with the Monday on or before its Thursday, so the week labelled Monday M holds the store's
week Thursday M+3 .. Wednesday M+9 (week 40 -> 1990-06-11, week 135 -> 1992-04-06). Only the
labels move by three days; no sales are split or re-allocated between weeks.

Prices, `relative_price`, `deal` and `feat` are also written as plan drops for every week, since
the published benchmark treats them as known up to the end of the forecast period. `constant`,
the 11 cross prices and `profit` (not known in advance) are left out. Missing store-brand-weeks
stay missing rows (unobserved), never zeros; there is no stock data, so no `availability` column.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.progress import Report
from ..storage import Lake
from .importing import (
    ImportSummary,
    LandingFrames,
    import_dataset,
    require_columns,
    require_files,
)

__all__ = [
    "BRANDS",
    "DATASET",
    "SALES_FILE",
    "SOURCE_FOLDER",
    "STORES_FILE",
    "dominicks_frames",
    "dominicks_mondays",
    "import_dominicks",
    "read_dominicks",
]

DATASET = "Dominick's orange juice"
SOURCE_FOLDER = "dominicks_oj"
SALES_FILE = "yx_weeks_40_135.csv.gz"
STORES_FILE = "storedemo.csv.gz"
# Dominick's week 1 starts on Thursday 1989-09-14; its Monday is three days earlier.
WEEK_ONE_MONDAY = dt.date(1989, 9, 11)
# brand number -> (brand name, size in ounces, maker), from the dataset's README.
BRANDS: dict[int, tuple[str, int, str]] = {
    1: ("Tropicana Premium", 64, "Tropicana"),
    2: ("Tropicana Premium", 96, "Tropicana"),
    3: ("Florida's Natural", 64, "Florida's Natural"),
    4: ("Tropicana", 64, "Tropicana"),
    5: ("Minute Maid", 64, "Minute Maid"),
    6: ("Minute Maid", 96, "Minute Maid"),
    7: ("Citrus Hill", 64, "Citrus Hill"),
    8: ("Tree Fresh", 64, "Tree Fresh"),
    9: ("Florida Gold", 64, "Florida Gold"),
    10: ("Dominick's", 64, "Dominick's"),
    11: ("Dominick's", 128, "Dominick's"),
}
PRICE_COLUMNS = [f"price{brand}" for brand in BRANDS]
SALES_COLUMNS = ["store", "brand", "week", "logmove", *PRICE_COLUMNS, "deal", "feat"]
PLAN_COLUMNS = ["price", "relative_price", "deal", "feat"]
# exp(logmove) must be this close to a whole number, relative to it (seen: 5e-10).
UNITS_TOLERANCE = 1e-6


def read_dominicks(src: Path) -> LandingFrames:
    """Reads `yx_weeks_40_135.csv.gz` and `storedemo.csv.gz` from `src` and maps them.

    Raises:
        FileNotFoundError: when a source file is missing, naming it and the `--src` to pass.
        ValueError: when the files do not have the expected columns or values.
    """
    sales_path, stores_path = require_files(src, [SALES_FILE, STORES_FILE], DATASET, SOURCE_FOLDER)
    return dominicks_frames(
        pd.read_csv(sales_path, float_precision="round_trip"),
        pd.read_csv(stores_path, float_precision="round_trip"),
    )


def dominicks_frames(yx: pd.DataFrame, storedemo: pd.DataFrame) -> LandingFrames:
    """Maps the source tables onto the landing contract (see the module docstring).

    Args:
        yx: `store, brand, week, logmove, price1..price11, deal, feat` (others are ignored).
        storedemo: `STORE` and the numeric store demographics.

    Returns:
        Sales and plans sorted by week, brand and store; articles for the 11 brands; merchants.

    Raises:
        ValueError: on a missing column, an unknown brand, or units that are not whole numbers.
    """
    require_columns(yx, SALES_COLUMNS, SALES_FILE)
    require_columns(storedemo, ["STORE"], STORES_FILE)
    yx = yx.sort_values(["week", "brand", "store"], ignore_index=True)
    unknown = sorted(set(yx["brand"]) - set(BRANDS))
    if unknown:
        raise ValueError(f"{SALES_FILE}: unknown brand numbers {unknown}; expected 1..11.")
    prices = yx[PRICE_COLUMNS].to_numpy(dtype="float64")
    own_price = prices[np.arange(len(yx)), yx["brand"].to_numpy() - 1]
    frame = pd.DataFrame(
        {
            "article_id": yx["brand"].astype(str),
            "merchant_id": yx["store"].astype(str),
            "week": dominicks_mondays(yx["week"]),
            "units_sold": _whole_units(yx["logmove"]),
            "price": own_price,
            "relative_price": own_price / prices.mean(axis=1),
            "deal": yx["deal"].astype("float64"),
            "feat": yx["feat"].astype("float64"),
        }
    )
    keys = ["article_id", "merchant_id", "week"]
    return LandingFrames(
        sales=frame,
        plans=frame[[*keys, *PLAN_COLUMNS]].copy(),
        articles=_articles(),
        merchants=_merchants(storedemo),
    )


def dominicks_mondays(weeks: pd.Series) -> pd.Series:
    """The landing week (datetime64 Monday) of Dominick's week numbers: 1989-09-11 + 7 (n − 1)."""
    offsets = pd.to_timedelta((weeks.astype("int64") - 1) * 7, unit="D")
    return pd.Timestamp(WEEK_ONE_MONDAY) + offsets


def import_dominicks(src: Path, lake: Lake, report: Report | None = None) -> ImportSummary:
    """Imports Dominick's orange juice from `src` into `lake`'s landing zone.

    Writes articles, merchants, one plan drop and one sales drop per week (96 of each).

    Args:
        src: Folder holding `yx_weeks_40_135.csv.gz` and `storedemo.csv.gz`.
        lake: Where to write.
        report: Where progress messages go; None for silence.

    Returns:
        What was written.

    Raises:
        FileNotFoundError: when a source file is missing.
        ValueError: when the source files are not as expected.
    """
    return import_dataset(DATASET, src, read_dominicks, lake, report)


def _whole_units(logmove: pd.Series) -> pd.Series:
    units = np.exp(logmove.astype("float64"))
    rounded = units.round()
    off = (units - rounded).abs() > UNITS_TOLERANCE * rounded.clip(lower=1.0)
    if off.any():
        raise ValueError(
            f"{SALES_FILE}: {int(off.sum())} rows have exp(logmove) that is not a whole number "
            f"of units, e.g. {units[off].iloc[0]!r}."
        )
    return rounded


def _articles() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"article_id": str(brand), "brand_name": name, "size_oz": size, "maker": maker}
            for brand, (name, size, maker) in BRANDS.items()
        ]
    )


def _merchants(storedemo: pd.DataFrame) -> pd.DataFrame:
    if storedemo["STORE"].duplicated().any():
        raise ValueError(f"{STORES_FILE}: a STORE appears more than once.")
    storedemo = storedemo.sort_values("STORE", ignore_index=True)
    demographics = storedemo.drop(columns="STORE").astype("float64")
    demographics.columns = [column.lower() for column in demographics.columns]
    merchant_id = storedemo["STORE"].astype(str).rename("merchant_id")
    return pd.concat([merchant_id, demographics], axis=1)
