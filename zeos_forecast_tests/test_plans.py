"""Plans: known future prices and promotions replace carried-forward values over the horizon."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from core_frames import ORIGIN, history_of, monday, sales_row

from zeos_forecast.core.contract import LandingDataError, validate_plan_drop
from zeos_forecast.core.features import build_demand_features, dynamic_columns
from zeos_forecast.core.model import future_inputs

pytestmark = pytest.mark.slow  # runs Dagster, processes or servers: seconds per test

PLAN_WEEK = (ORIGIN + dt.timedelta(weeks=2)).isoformat()


def plan_row(article_id: str, weeks_after_origin: int, **values: float) -> dict:
    return {
        "article_id": article_id,
        "merchant_id": "M1",
        "week": monday(-weeks_after_origin),
        **values,
    }


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Two SKUs at full price with a `promo` column, observed for ten weeks up to the origin."""
    rows = [
        sales_row(sku, "M1", w, price=10.0, list_price=10.0, promo=0.0)
        for sku in ("A", "B")
        for w in range(10)
    ]
    return build_demand_features(history_of(rows), ORIGIN, 20, 13)


def test_a_planned_price_replaces_the_carried_price_in_its_week_only(frame):
    plans = pd.DataFrame([plan_row("A", 2, price=7.0)])

    future = future_inputs(frame, ORIGIN, 4, dynamic_columns(frame), plans)

    a = future.frame.loc[future.frame["unique_id"] == 0].set_index("ds")
    assert a["price"].tolist() == [10.0, 7.0, 10.0, 10.0]
    assert a["discount"].tolist() == pytest.approx([0.0, 0.3, 0.0, 0.0])
    b = future.frame.loc[future.frame["unique_id"] == 1]
    assert b["price"].tolist() == [10.0] * 4


def test_the_planned_share_says_how_many_sku_weeks_came_from_a_plan(frame):
    plans = pd.DataFrame([plan_row("A", h, promo=1.0) for h in (1, 2, 3)])

    future = future_inputs(frame, ORIGIN, 4, dynamic_columns(frame), plans)

    assert future.planned_share["promo"] == pytest.approx(3 / 8)
    assert future.planned_share["price"] == 0.0


def test_a_blank_planned_value_falls_back_to_the_last_observed_one(frame):
    plans = pd.DataFrame([plan_row("A", 1, price=np.nan, promo=1.0)])

    future = future_inputs(frame, ORIGIN, 2, dynamic_columns(frame), plans).frame

    first = future.loc[(future["unique_id"] == 0) & (future["ds"] == monday(-1))].iloc[0]
    assert (first["price"], first["promo"]) == (10.0, 1.0)


def test_plans_for_unknown_skus_weeks_outside_the_horizon_or_unknown_columns_are_ignored(frame):
    plans = pd.DataFrame(
        [
            plan_row("NEW", 1, price=1.0),
            plan_row("A", 9, price=1.0),
            plan_row("A", 1, coupon=1.0),
        ]
    )

    future = future_inputs(frame, ORIGIN, 3, dynamic_columns(frame), plans)

    assert future.frame["price"].eq(10.0).all()
    assert "coupon" not in future.frame.columns
    assert set(future.planned_share.values()) == {0.0}


def test_a_plan_drop_is_validated_like_a_sales_drop_without_outcomes():
    plan = pd.DataFrame(
        {
            "article_id": ["A", "B"],
            "merchant_id": ["M1", "M1"],
            "week": [PLAN_WEEK] * 2,
            "price": ["7.5", ""],
            "deal": ["1", "0"],
        }
    )

    valid = validate_plan_drop([("plans/p.csv", plan)], dt.date.fromisoformat(PLAN_WEEK))

    assert valid["price"].tolist()[0] == 7.5 and np.isnan(valid["price"].tolist()[1])
    assert valid["deal"].tolist() == [1.0, 0.0]
    assert "units_sold" not in valid.columns


@pytest.mark.parametrize("column", ["units_sold", "availability"])
def test_a_plan_that_holds_an_outcome_is_refused_naming_the_column(column):
    plan = pd.DataFrame(
        {"article_id": ["A"], "merchant_id": ["M1"], "week": [PLAN_WEEK], column: [1.0]}
    )

    with pytest.raises(LandingDataError) as error:
        validate_plan_drop([("plans/p.parquet", plan)], dt.date.fromisoformat(PLAN_WEEK))

    assert error.value.column == column and "plans/p.parquet" in str(error.value)


def test_a_plan_with_a_week_of_another_folder_or_a_repeated_sku_is_refused():
    plan = pd.DataFrame(
        {"article_id": ["A", "A"], "merchant_id": ["M1", "M1"], "week": [PLAN_WEEK] * 2}
    )
    week = dt.date.fromisoformat(PLAN_WEEK)

    with pytest.raises(LandingDataError, match="share a SKU key"):
        validate_plan_drop([("p.parquet", plan)], week)
    with pytest.raises(LandingDataError, match="does not match the drop's folder"):
        validate_plan_drop([("p.parquet", plan.head(1))], week + dt.timedelta(weeks=1))


@pytest.fixture(scope="module")
def orange_juice(shared_data):
    """Dominick's orange juice as landing frames, and the feature frame of an origin inside it."""
    from zeos_forecast.core.demand import derive_demand
    from zeos_forecast.datasets.dominicks import read_dominicks

    frames = read_dominicks(shared_data / "dominicks_oj")
    origin = dt.date(1991, 10, 7)  # Dominick's week 109
    sales = frames.sales.assign(week=pd.to_datetime(frames.sales["week"]))
    history = derive_demand(sales.assign(availability=1.0))
    features = build_demand_features(history, origin, 156, 13, frames.articles, frames.merchants)
    plans = frames.plans.assign(week=pd.to_datetime(frames.plans["week"]))
    return features, plans, origin


def test_a_planned_promotion_with_a_price_cut_raises_the_dominicks_forecast(orange_juice):
    from zeos_forecast.core.model import train_and_score
    from zeos_forecast.core.settings import ForecastSettings

    features, plans, origin = orange_juice
    settings = ForecastSettings(horizon=3, n_estimators=60, threads=1, quantiles=(0.5,))
    horizon_weeks = pd.date_range(pd.Timestamp(origin), periods=4, freq="7D")[1:]
    plans = plans.loc[plans["week"].isin(horizon_weeks)]
    quiet = plans.assign(deal=0.0, feat=0.0)
    brand = quiet["article_id"] == "5"  # Minute Maid 64 oz, in every store
    promoted = quiet.copy()
    promoted.loc[brand, "deal"] = 1.0
    promoted.loc[brand, "feat"] = 1.0
    promoted.loc[brand, "price"] *= 0.8
    promoted.loc[brand, "relative_price"] *= 0.8

    base = train_and_score(features, origin, settings, plans=quiet).table
    lifted = train_and_score(features, origin, settings, plans=promoted).table

    mine = base["article_id"] == "5"
    assert lifted.loc[mine, "forecast"].sum() > 1.2 * base.loc[mine, "forecast"].sum()
    others = ~mine
    assert lifted.loc[others, "forecast"].sum() == pytest.approx(
        base.loc[others, "forecast"].sum(), rel=1e-9
    )


# ---- plans through the weekly run ----

RUN_WEEK = dt.date(2025, 6, 2)


@pytest.fixture(scope="module")
def landing(landing_factory):
    return landing_factory(120, 64, RUN_WEEK, seed=5)


def write_plans(root, weeks: range, **values) -> None:
    """Plan drops for `weeks` weeks after RUN_WEEK: every SKU of the last drop, `values` set."""
    from zeos_forecast.storage import LANDING_PLANS, Lake

    lake = Lake(str(root))
    last = lake.read_sales_drop(RUN_WEEK)[0].frame[["article_id", "merchant_id"]]
    for h in weeks:
        week = RUN_WEEK + dt.timedelta(weeks=h)
        lake.write_landing_drop(week, last.assign(week=week, **values), folder=LANDING_PLANS)


def test_a_weekly_run_uses_the_plans_of_its_horizon_and_says_so(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    from zeos_forecast.pipeline import launch

    root = lake_copy(landing)
    write_plans(root, range(1, 4), price=1.0, promo=1)
    write_plans(root, range(20, 21), price=1.0)  # beyond the horizon: not read

    outcome = launch.forecast_week(
        RUN_WEEK, str(root), instance, fast_forecast, fast_window, report=None
    )

    metadata = outcome.metadata["demand_forecast"]
    assert metadata["plan_weeks"] == f"3 of {fast_forecast['horizon']}"
    shares = {
        row.split("|")[1].strip(): row.split("|")[2].strip()
        for row in metadata["future_inputs"].splitlines()[2:]
    }
    assert shares["price"] == shares["promo"] == f"{3 / fast_forecast['horizon']:.1%}"


def test_a_plan_that_breaks_the_contract_fails_the_run_naming_the_file(
    landing, lake_copy, instance, fast_forecast, fast_window
):
    from zeos_forecast.pipeline import launch

    root = lake_copy(landing)
    write_plans(root, range(1, 2), price=-5.0)

    with pytest.raises(launch.RunFailed) as failed:
        launch.forecast_week(RUN_WEEK, str(root), instance, fast_forecast, fast_window, report=None)

    message = str(failed.value)
    assert "landing/plans/week=2025-06-09/part-0.parquet" in message
    assert "'price'" in message and "must be > 0" in message
    assert not (root / "demand_forecast").exists()
