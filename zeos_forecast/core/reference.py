"""The published TSPerf LightGBM recipe for Dominick's orange juice, as a reference model.

Microsoft's TSPerf retail benchmark (`retail_sales/OrangeJuice_Pt_3Weeks_Weekly/submissions/
LightGBM`, github.com/microsoft/forecasting at a409804) is the best published entry on that data
(MAPE 36.28 %). Backtests run it beside our model, on the same origins and the same landing data,
so that "better than the published model" is measured, not assumed. The recipe, mapped onto the
landing contract:

- Target: units sold, raw (no log), on the full SKU × week grid from the first week of the
  history; missing weeks, the target included, are filled forward, then backward, per SKU.
- Inputs: the SKU's article and merchant (categorical; brand and store there), the week's running
  number, week of month, month, every extra numeric column of the drops (deal and feat there),
  the own `price` and `price_ratio` = price / the mean price of all articles at the merchant that
  week (the mean of the 11 brands' prices there), units lagged 2..19 weeks and their 40-week
  moving mean from lag 2 on.
- Over the horizon, prices and extra columns come from the plans (else carried forward) and units
  are carried forward from the origin, so lag 2 of week origin + 3 repeats the origin's units, as
  in the recipe.
- LightGBM with `objective: mape` and the tuned parameters below, rows with every lag known,
  predictions rounded to whole units.

Deviations, deliberate: the recipe re-fitted its model every third round only; here every origin
fits its own. Early stopping watched the training set itself (so it ran all 940 rounds); here the
940 rounds run without it. The 11 cross prices enter only through `price_ratio`, as in the recipe.
"""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd

from .accuracy import HINDSIGHT
from .contract import KEY_COLUMNS

__all__ = [
    "HINDSIGHT",
    "REFERENCE_MODELS",
    "TSPERF",
    "TSPERF_PARAMS",
    "TSPERF_ROUNDS",
    "tsperf_lightgbm",
]

# References a backtest can score beside ours on the same origins (`--reference`): the published
# recipe, and the hindsight level (`accuracy.hindsight_level`), a bound rather than a model.
TSPERF = "tsperf_lightgbm"
REFERENCE_MODELS = (TSPERF, HINDSIGHT)

TSPERF_PARAMS = {
    "objective": "mape",
    "num_leaves": 124,
    "min_data_in_leaf": 340,
    "learning_rate": 0.1,
    "feature_fraction": 0.65,
    "bagging_fraction": 0.87,
    "bagging_freq": 19,
    "seed": 1,
    "verbosity": -1,
}
TSPERF_ROUNDS = 940
LAGS = range(2, 20)
MOVING_MEAN_WEEKS = 40
_SKU_ORDER = ["article_id", "merchant_id", "week"]


def tsperf_lightgbm(
    history: pd.DataFrame,
    origin: dt.date,
    horizon: int,
    plans: pd.DataFrame | None = None,
    threads: int = 0,
) -> pd.DataFrame:
    """The TSPerf recipe's forecast of every SKU seen in `history` for `origin + 1 .. + horizon`.

    Args:
        history: Sales rows (keys, `week`, `units_sold`, `price` and extra numeric columns); rows
            after `origin` are ignored.
        origin: The last observed week.
        horizon: Weeks ahead.
        plans: Known future inputs (keys, `week`, `price`, extra columns) for the horizon.
        threads: LightGBM threads (0: all cores).

    Returns:
        `article_id`, `merchant_id`, `week`, `horizon`, `forecast` (whole units, >= 0).
    """
    origin_ts = pd.Timestamp(origin)
    weeks_of = pd.to_datetime(history["week"])
    past = history.loc[weeks_of <= origin_ts].assign(week=weeks_of[weeks_of <= origin_ts])
    extras = [
        c
        for c in past.columns
        if c not in {*KEY_COLUMNS, "week", "units_sold", "availability", "censored", "demand"}
        and c not in {"price", "list_price"}
        and pd.api.types.is_numeric_dtype(past[c])
    ]
    # A column the drops never filled (a lake's schema may hold prices that no drop gave) is
    # left out: the recipe drops every row with a missing input.
    inputs = [c for c in ["price", *extras] if c in past.columns and past[c].notna().any()]
    grid = _grid(past, origin_ts, horizon)
    frame = grid.merge(
        past[[*_SKU_ORDER, "units_sold", *inputs]].astype({k: str for k in KEY_COLUMNS}),
        on=_SKU_ORDER,
        how="left",
    )
    if plans is not None and len(plans) and inputs:
        future = plans.loc[pd.to_datetime(plans["week"]) > origin_ts].copy()
        future["week"] = pd.to_datetime(future["week"])
        known = [c for c in inputs if c in future.columns]
        future = future[[*_SKU_ORDER, *known]].astype({k: str for k in KEY_COLUMNS})
        frame = frame.merge(future, on=_SKU_ORDER, how="left", suffixes=("", "_plan"))
        for column in known:
            frame[column] = frame[column].fillna(frame.pop(f"{column}_plan"))
    if "price" in frame.columns:
        # The merchant's mean price that week over its articles (before any filling).
        mean_price = frame.groupby(["merchant_id", "week"])["price"].transform("mean")
        frame["price_ratio"] = frame["price"] / mean_price
    filled = [c for c in ["units_sold", *inputs, "price_ratio"] if c in frame.columns]
    by_sku = frame.groupby(list(KEY_COLUMNS), sort=False)
    frame[filled] = by_sku[filled].ffill()
    frame[filled] = frame.groupby(list(KEY_COLUMNS), sort=False)[filled].bfill()
    by_sku = frame.groupby(list(KEY_COLUMNS), sort=False)["units_sold"]
    for lag in LAGS:
        frame[f"units_lag{lag}"] = by_sku.shift(lag)
    frame["units_mean"] = by_sku.transform(
        lambda s: s.shift(LAGS[0]).rolling(MOVING_MEAN_WEEKS, min_periods=1).mean()
    )
    first = frame["week"].min()
    frame["week_number"] = ((frame["week"] - first).dt.days // 7).astype("int32")
    frame["month"] = frame["week"].dt.month.astype("int8")
    frame["week_of_month"] = np.ceil(
        (frame["week"].dt.day + frame["week"].dt.to_period("M").dt.start_time.dt.weekday) / 7
    ).astype("int8")
    for key in KEY_COLUMNS:
        frame[key] = frame[key].astype("category")
    columns = [
        *KEY_COLUMNS,
        "week_number",
        "week_of_month",
        "month",
        *[c for c in [*inputs, "price_ratio"] if c in frame.columns],
        *(f"units_lag{lag}" for lag in LAGS),
        "units_mean",
    ]
    is_past = frame["week"] <= origin_ts
    train = frame.loc[is_past].dropna(subset=[*columns, "units_sold"])
    dataset = lgb.Dataset(
        train[columns], label=train["units_sold"], categorical_feature=list(KEY_COLUMNS)
    )
    params = {**TSPERF_PARAMS, "num_threads": threads}
    booster = lgb.train(params, dataset, num_boost_round=TSPERF_ROUNDS)
    scored = frame.loc[~is_past].copy()
    scored["forecast"] = np.clip(np.round(booster.predict(scored[columns])), 0, None)
    scored["horizon"] = ((scored["week"] - origin_ts).dt.days // 7).astype("int16")
    out = scored[[*KEY_COLUMNS, "week", "horizon", "forecast"]]
    return out.astype({k: str for k in KEY_COLUMNS}).reset_index(drop=True)


def _grid(past: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """Every SKU × every week from the history's first week to `origin + horizon`."""
    weeks = pd.date_range(past["week"].min(), origin + pd.Timedelta(weeks=horizon), freq="7D")
    skus = past[list(KEY_COLUMNS)].astype(str).drop_duplicates().sort_values(list(KEY_COLUMNS))
    return pd.DataFrame(
        {
            "article_id": np.repeat(skus["article_id"].to_numpy(), len(weeks)),
            "merchant_id": np.repeat(skus["merchant_id"].to_numpy(), len(weeks)),
            "week": np.tile(weeks.to_numpy(), len(skus)),
        }
    )
