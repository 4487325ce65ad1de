"""The published TSPerf LightGBM recipe, run as a reference model beside ours."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from zeos_forecast.core.reference import tsperf_lightgbm

LAST_WEEK = dt.date(2025, 6, 2)
HORIZON = 3


def history_and_origin(weeks: int = 80, skus: int = 60, seed: int = 5):
    """Dense weekly sales of `skus` SKUs that respond to price cuts, as orange juice does."""
    rng = np.random.default_rng(seed)
    week = pd.date_range(end=pd.Timestamp(LAST_WEEK), periods=weeks, freq="7D")
    frame = pd.DataFrame(
        {
            "article_id": np.repeat([f"A{i % 6}" for i in range(skus)], weeks),
            "merchant_id": np.repeat([f"M{i // 6}" for i in range(skus)], weeks),
            "week": np.tile(week, skus),
        }
    )
    cut = rng.random(len(frame)) < 0.2
    frame["price"] = np.where(cut, 1.5, 2.5)
    frame["deal"] = cut.astype("float64")
    level = np.repeat(rng.uniform(20, 200, skus), weeks)
    frame["units_sold"] = rng.poisson(level * (frame["price"] / 2.5) ** -3.0).astype("float64")
    origin = (pd.Timestamp(LAST_WEEK) - pd.Timedelta(weeks=HORIZON)).date()
    return frame, origin


def plans_after(history: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
    later = history.loc[history["week"] > pd.Timestamp(origin)]
    return later[["article_id", "merchant_id", "week", "price", "deal"]].copy()


def test_the_recipe_forecasts_every_sku_of_the_history_in_whole_units_for_each_horizon():
    history, origin = history_and_origin()

    forecast = tsperf_lightgbm(history, origin, HORIZON, threads=1)

    skus = history[["article_id", "merchant_id"]].drop_duplicates()
    assert len(forecast) == len(skus) * HORIZON
    assert sorted(forecast["horizon"].unique()) == [1, 2, 3]
    assert (forecast["forecast"] >= 0).all()
    assert np.array_equal(forecast["forecast"], np.round(forecast["forecast"]))
    expected = {pd.Timestamp(origin) + pd.Timedelta(weeks=h) for h in range(1, HORIZON + 1)}
    assert set(forecast["week"]) == expected


def test_the_recipe_reads_nothing_after_the_origin_but_the_plans():
    history, origin = history_and_origin()
    later = history["week"] > pd.Timestamp(origin)
    changed = history.copy()
    changed.loc[later, "units_sold"] = changed.loc[later, "units_sold"] * 10 + 7

    first = tsperf_lightgbm(history, origin, HORIZON, threads=1)
    second = tsperf_lightgbm(changed, origin, HORIZON, threads=1)

    pd.testing.assert_frame_equal(first, second)


def test_planned_prices_over_the_horizon_move_the_recipe_forecast():
    history, origin = history_and_origin()
    plans = plans_after(history, origin)
    cut = plans.assign(price=1.5, deal=1.0)

    as_planned = tsperf_lightgbm(history, origin, HORIZON, plans, threads=1)
    with_cuts = tsperf_lightgbm(history, origin, HORIZON, cut, threads=1)

    assert with_cuts["forecast"].sum() > 1.5 * as_planned["forecast"].sum()


def test_a_lake_whose_drops_never_had_prices_still_gets_the_recipe_forecast():
    history, origin = history_and_origin()
    without_prices = history.assign(price=np.nan, deal=np.nan)

    forecast = tsperf_lightgbm(without_prices, origin, HORIZON, threads=1)

    assert len(forecast) == history[["article_id", "merchant_id"]].drop_duplicates().shape[0] * 3
    assert forecast["forecast"].gt(0).any()
