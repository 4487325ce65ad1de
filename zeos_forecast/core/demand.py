"""Demand from sales and stock availability: a week with availability < 1 is censored.

Sales in a week the SKU was out of stock for part of the time understate demand. Where enough of
the week was in stock, demand is estimated by scaling sales to the full week; below that, demand
is unknown (NaN) and the feature step fills it from the SKU's own recent level, with zero
training weight, so the model never learns a stockout as low demand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["MIN_AVAILABILITY_TO_SCALE", "derive_demand", "derive_demand_table"]

# Below this share of the week in stock, scaled-up sales are too noisy to trust as demand.
MIN_AVAILABILITY_TO_SCALE = 0.5


def derive_demand(sales: pd.DataFrame) -> pd.DataFrame:
    """Adds `censored` and `demand` to validated weekly sales.

    Args:
        sales: Rows with `units_sold` and `availability` (0..1).

    Returns:
        A copy with `censored` (bool: availability < 1) and `demand` (float64: units_sold where
        fully available, units_sold / availability where availability >= 0.5, NaN below).
    """
    out = sales.copy()
    out["censored"], out["demand"] = _censored_and_demand(
        out["units_sold"].to_numpy(dtype="float64"), out["availability"].to_numpy(dtype="float64")
    )
    return out


def derive_demand_table(sales: pa.Table) -> pa.Table:
    """`derive_demand` on an Arrow table: the same columns and values, unknown demand as null.

    Args:
        sales: Rows with `units_sold` and `availability` (float64, no nulls).
    """
    censored, demand = _censored_and_demand(
        sales["units_sold"].to_numpy(), sales["availability"].to_numpy()
    )
    out = sales
    for name, values in (
        ("censored", pa.array(censored)),
        ("demand", pa.array(demand, from_pandas=True)),
    ):
        index = out.schema.get_field_index(name)
        # A column of that name in the drop is replaced in place, as pandas assignment does.
        out = out.set_column(index, name, values) if index >= 0 else out.append_column(name, values)
    return out


def _censored_and_demand(
    units: np.ndarray, availability: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    censored = availability < 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scaled = units / availability
    return censored, np.where(availability >= MIN_AVAILABILITY_TO_SCALE, scaled, np.nan)
