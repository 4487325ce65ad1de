"""Small input builders shared by the forecasting-core tests: landing drops and sales histories."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd

from zeos_forecast.core.demand import derive_demand
from zeos_forecast.datasets.synthetic import SyntheticPanel

ORIGIN = dt.date(2024, 6, 3)  # a Monday: the forecast origin of the hand-built histories


def monday(weeks_before_origin: int, origin: dt.date = ORIGIN) -> pd.Timestamp:
    """The Monday `weeks_before_origin` weeks before `origin` (negative: after it)."""
    return pd.Timestamp(origin) - pd.Timedelta(weeks=weeks_before_origin)


def sales_drop(week: dt.date, n_skus: int = 6, first_sku: int = 0) -> pd.DataFrame:
    """A valid parquet-style drop: string ids, a datetime week, float measures, an int flag."""
    skus = np.arange(first_sku, first_sku + n_skus)
    list_price = 20.0 + skus
    promo = (skus % 3 == 1).astype("int64")
    return pd.DataFrame(
        {
            "article_id": [f"A{s:04d}" for s in skus],
            "merchant_id": [f"M{s % 2}" for s in skus],
            "week": pd.Timestamp(week),
            "units_sold": (skus % 5).astype("float64"),
            "price": np.where(promo == 1, list_price * 0.5, list_price),
            "list_price": list_price,
            "availability": np.resize([1.0, 0.8, 0.0, 1.0], n_skus),
            "promo": promo,
        }
    )


def as_csv_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the lake reads a CSV drop: every column text, blanks as empty strings."""
    text = frame.to_csv(index=False)
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def sales_row(
    article_id: str,
    merchant_id: str,
    weeks_before_origin: int,
    units_sold: float = 10.0,
    availability: float = 1.0,
    **extra: float,
) -> dict:
    """One validated `sales_history` row (before demand is derived)."""
    return {
        "article_id": article_id,
        "merchant_id": merchant_id,
        "week": monday(weeks_before_origin),
        "units_sold": float(units_sold),
        "availability": float(availability),
        **extra,
    }


def history_of(rows: list[dict]) -> pd.DataFrame:
    """Sales rows with demand derived, as `sales_history` holds them."""
    return derive_demand(pd.DataFrame(rows))


def panel_history(panel: SyntheticPanel, weeks: range | None = None) -> pd.DataFrame:
    """The panel's weekly landing rows for `weeks` (all by default) with demand derived."""
    weeks = weeks if weeks is not None else range(len(panel.weeks))
    return derive_demand(pd.concat([panel.week_frame(t) for t in weeks], ignore_index=True))
