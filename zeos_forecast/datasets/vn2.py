"""VN2 Inventory Planning Challenge, Week 0 history, mapped onto the landing contract.

| Source (`sales_week0.parquet`) | Landing |
|---|---|
| `product` | `article_id` |
| `store` | `merchant_id` |
| `week` (a Monday) | `week` |
| `sales` | `units_sold` |
| `in_stock` True / False | `availability` 1.0 / 0.0 (a stockout week: censored demand) |

Metadata from `week0_master.csv.gz`: articles keyed by `Product` with `product_group`, `division`,
`department`, `department_group`, merchants keyed by `Store` with `store_format` and `format`. They
are category codes, so they are written as strings (categorical static features). Each product and
each store must have one value of each across the master's rows, else the import stops.

There are no prices or promotions, so no plans. The eight evaluation weeks after 2024-04-08 are
not in the source (kept back) and are not imported.
"""

from __future__ import annotations

from pathlib import Path

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
    "ARTICLE_COLUMNS",
    "DATASET",
    "MASTER_FILE",
    "MERCHANT_COLUMNS",
    "SALES_FILE",
    "SOURCE_FOLDER",
    "import_vn2",
    "read_vn2",
    "vn2_frames",
]

DATASET = "VN2"
SOURCE_FOLDER = "vn2"
SALES_FILE = "sales_week0.parquet"
MASTER_FILE = "week0_master.csv.gz"
SALES_COLUMNS = ["store", "product", "week", "sales", "in_stock"]
# Master column -> metadata column, per product and per store.
ARTICLE_COLUMNS = {
    "ProductGroup": "product_group",
    "Division": "division",
    "Department": "department",
    "DepartmentGroup": "department_group",
}
MERCHANT_COLUMNS = {"StoreFormat": "store_format", "Format": "format"}


def read_vn2(src: Path) -> LandingFrames:
    """Reads `sales_week0.parquet` and `week0_master.csv.gz` from `src` and maps them.

    Raises:
        FileNotFoundError: when a source file is missing, naming it and the `--src` to pass.
        ValueError: when the files do not have the expected columns or the master disagrees
            with itself about a product or a store.
    """
    sales_path, master_path = require_files(src, [SALES_FILE, MASTER_FILE], DATASET, SOURCE_FOLDER)
    return vn2_frames(pd.read_parquet(sales_path), pd.read_csv(master_path))


def vn2_frames(sales: pd.DataFrame, master: pd.DataFrame) -> LandingFrames:
    """Maps the long sales table and the master table onto the landing contract.

    Args:
        sales: `store, product, week, sales, in_stock`, one row per store-product-week.
        master: `Store, Product` and the product and store attributes.

    Returns:
        Sales sorted by week, store and product; no plans; articles; merchants.

    Raises:
        ValueError: on a missing column or a product or store with conflicting attributes.
    """
    require_columns(sales, SALES_COLUMNS, SALES_FILE)
    require_columns(master, ["Store", "Product", *ARTICLE_COLUMNS, *MERCHANT_COLUMNS], MASTER_FILE)
    sales = sales.sort_values(["week", "store", "product"], ignore_index=True)
    frame = pd.DataFrame(
        {
            "article_id": sales["product"].astype(str),
            "merchant_id": sales["store"].astype(str),
            "week": pd.to_datetime(sales["week"]),
            "units_sold": sales["sales"].astype("float64"),
            "availability": sales["in_stock"].astype("float64"),
        }
    )
    return LandingFrames(
        sales=frame,
        plans=None,
        articles=_one_row_per(master, "Product", "article_id", ARTICLE_COLUMNS),
        merchants=_one_row_per(master, "Store", "merchant_id", MERCHANT_COLUMNS),
    )


def import_vn2(src: Path, lake: Lake, report: Report | None = None) -> ImportSummary:
    """Imports the VN2 Week 0 history from `src` into `lake`'s landing zone.

    Writes articles, merchants and one sales drop per week (157); no plans.

    Args:
        src: Folder holding `sales_week0.parquet` and `week0_master.csv.gz`.
        lake: Where to write.
        report: Where progress messages go; None for silence.

    Returns:
        What was written.

    Raises:
        FileNotFoundError: when a source file is missing.
        ValueError: when the source files are not as expected.
    """
    return import_dataset(DATASET, src, read_vn2, lake, report)


def _one_row_per(master: pd.DataFrame, key: str, id_column: str, columns: dict) -> pd.DataFrame:
    """One row per `key` with `columns` renamed, as strings; raises if a key's values disagree."""
    table = master[[key, *columns]].sort_values(key, kind="stable")
    if table.isna().any().any():
        raise ValueError(f"{MASTER_FILE}: empty cells in {[key, *columns]}.")
    values = table.astype(str)
    counts = values.groupby(key)[list(columns)].nunique()
    conflicting = counts[(counts > 1).any(axis=1)]
    if not conflicting.empty:
        raise ValueError(
            f"{MASTER_FILE}: {len(conflicting)} values of {key} have more than one value of "
            f"{[c for c in columns if (conflicting[c] > 1).any()]} across rows, e.g. {key} "
            f"{conflicting.index[0]}; each {key} must have one."
        )
    one = values.drop_duplicates(key, ignore_index=True)
    return one.rename(columns={key: id_column, **columns})
