"""Accuracy metrics on a tiny example checked by hand, and their additivity over any grouping."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zeos_forecast.core.accuracy import (
    HINDSIGHT,
    baseline_forecasts,
    hindsight_level,
    point_components,
    score_week,
    summarize,
)

WEEK = dt.date(2024, 6, 3)
QUANTILES = ["q10", "q50", "q90"]


def weeks_before(n: int) -> dt.date:
    return WEEK - dt.timedelta(weeks=n)


def forecast_row(sku: str, horizon: int, point: float, q10: float, q50: float, q90: float):
    return {
        "article_id": sku,
        "merchant_id": "M",
        "forecast_week": weeks_before(horizon),
        "week": WEEK,
        "horizon": horizon,
        "forecast": point,
        "q10": q10,
        "q50": q50,
        "q90": q90,
    }


@pytest.fixture(scope="module")
def components() -> pd.DataFrame:
    """A sold 10 and B sold 0 in full stock; C was half out of stock; D has no sales row."""
    actuals = pd.DataFrame(
        {
            "article_id": ["A", "B", "C"],
            "merchant_id": "M",
            "units_sold": [10.0, 0.0, 5.0],
            "availability": [1.0, 1.0, 0.5],
        }
    )
    forecasts = pd.DataFrame(
        [
            forecast_row("A", 1, 12, 8, 11, 15),
            forecast_row("B", 1, 1, 0, 0.5, 2),
            forecast_row("C", 1, 3, 1, 3, 5),
            forecast_row("D", 1, 3, 1, 3, 5),
            forecast_row("A", 2, 6, 5, 6, 9),
            forecast_row("B", 2, 0, 0, 0, 0),
        ]
    )
    history = pd.DataFrame(
        {
            "article_id": ["A", "A", "A", "B", "B"],
            "merchant_id": "M",
            "week": [weeks_before(52), weeks_before(2), weeks_before(1), weeks_before(1),
                     weeks_before(3)],
            "units_sold": [7.0, 4.0, 8.0, 2.0, 0.0],
        }
    )  # fmt: skip
    return score_week(actuals, forecasts, history, QUANTILES)


@pytest.fixture(scope="module")
def metrics(components) -> pd.DataFrame:
    return summarize(components, ["model", "horizon"]).set_index(["model", "horizon"])


def test_only_fully_stocked_skus_with_sales_rows_are_scored(metrics):
    assert metrics["rows"].unique().tolist() == [2]


def test_our_point_metrics_match_the_hand_computed_values(metrics):
    h1, h2 = metrics.loc[("zeos", 1)], metrics.loc[("zeos", 2)]
    # h1: errors +2 (A) and +1 (B) on 10 units; MAPE leaves out B's zero.
    assert (h1["wape"], h1["bias"], h1["mape"]) == pytest.approx((0.3, 0.3, 0.2))
    assert h1["mae_pct_plus_abs_bias"] == pytest.approx(0.6)
    # h2: errors -4 (A) and 0 (B).
    assert (h2["wape"], h2["bias"], h2["mape"]) == pytest.approx((0.4, -0.4, 0.4))


def test_pinball_loss_is_scaled_by_the_mean_actual(metrics):
    h1 = metrics.loc[("zeos", 1)]
    # q10: A 0.1 * (10 - 8) = 0.2, B 0; q90: A 0.9 * (10 - 15) -> 0.1 * 5 = 0.5, B 0.1 * 2 = 0.2.
    assert h1["pinball_q10"] == pytest.approx(0.2 / 10)
    assert h1["pinball_q90"] == pytest.approx(0.7 / 10)


def test_coverage_is_the_share_at_or_below_and_ties_count_for_calibration(metrics):
    h1, h2 = metrics.loc[("zeos", 1)], metrics.loc[("zeos", 2)]
    # h1 q10: A (10) above 8; B (0) ties at 0: below 0, at or below 0.5.
    assert (h1["below_q10"], h1["coverage_q10"]) == pytest.approx((0.0, 0.5))
    # 0.1 lies inside [0, 0.5]: a count quantile of 0 with a tie is calibrated.
    assert h1["calibration_error_q10"] == 0.0
    # h1 q90: both below (1.0): 0.1 too many.
    assert (h1["coverage_q90"], h1["calibration_error_q90"]) == pytest.approx((1.0, 0.1))
    # h2 q90: A above 9, B ties at 0: [0, 0.5] misses 0.9 by 0.4; the interval holds B only.
    assert h2["calibration_error_q90"] == pytest.approx(0.4)
    assert (h1["interval_coverage"], h2["interval_coverage"]) == (1.0, 0.5)


def test_the_baselines_use_the_history_as_of_each_origin(metrics):
    naive, seasonal, average = (metrics.loc[(m, 1)] for m in BASELINE_NAMES)
    # origin W-1: naive A 8, B 2; seasonal A 7 (52 weeks back), B none -> average 1;
    # 13-week average A (4 + 8) / 2 = 6, B (0 + 2) / 2 = 1.
    assert (naive["wape"], naive["bias"]) == pytest.approx((0.4, 0.0))
    assert (seasonal["wape"], seasonal["bias"]) == pytest.approx((0.4, -0.2))
    assert (average["wape"], average["bias"]) == pytest.approx((0.5, -0.3))
    # origin W-2: naive A 4 (W-2), B 0 (its latest row, W-3).
    assert metrics.loc[("naive", 2), "wape"] == pytest.approx(0.6)


BASELINE_NAMES = ("naive", "seasonal_naive", "moving_average")


def test_baselines_have_point_metrics_only(metrics):
    assert metrics.loc[("naive", 1), ["pinball_q10", "coverage_q10"]].isna().all()


def test_a_baseline_falls_back_when_its_week_has_no_row():
    history = pd.DataFrame(
        {"article_id": ["A"], "merchant_id": "M", "week": [weeks_before(20)], "units_sold": [3.0]}
    )
    targets = pd.DataFrame({"article_id": ["A"], "merchant_id": "M", "week": [WEEK]})

    out = baseline_forecasts(history, weeks_before(1), targets).iloc[0]

    assert (out["naive"], out["moving_average"], out["seasonal_naive"]) == (3.0, 3.0, 3.0)


@settings(max_examples=40, deadline=None)
@given(
    actual=st.lists(st.integers(0, 50), min_size=2, max_size=30),
    noise=st.integers(0, 2**31 - 1),
)
def test_summaries_over_any_split_of_skus_equal_the_summary_of_all(actual, noise):
    rng = np.random.default_rng(noise)
    n = len(actual)
    skus = [f"S{i}" for i in range(n)]
    actuals = pd.DataFrame(
        {"article_id": skus, "merchant_id": "M", "units_sold": actual, "availability": 1.0}
    )
    point = rng.gamma(2.0, 5.0, n)
    forecasts = pd.DataFrame(
        {
            "article_id": skus,
            "merchant_id": "M",
            "forecast_week": weeks_before(1),
            "week": WEEK,
            "horizon": 1,
            "forecast": point,
            "q10": point * 0.5,
            "q50": point,
            "q90": point * 1.5,
        }
    )
    history = actuals.assign(week=weeks_before(1))[
        ["article_id", "merchant_id", "week", "units_sold"]
    ]
    half = n // 2
    parts = [
        score_week(actuals.iloc[:half], forecasts, history, QUANTILES),
        score_week(actuals.iloc[half:], forecasts, history, QUANTILES),
    ]

    whole = summarize(score_week(actuals, forecasts, history, QUANTILES), ["model"])
    split = summarize(pd.concat(parts), ["model"])

    pd.testing.assert_frame_equal(whole, split)
    exact = forecasts.assign(forecast=np.asarray(actual, dtype="float64"))
    perfect = summarize(score_week(actuals, exact, history, QUANTILES), ["model"])
    wape = perfect.set_index("model").loc["zeos", "wape"]
    assert wape == 0.0 if sum(actual) > 0 else np.isnan(wape)


def test_skus_out_of_stock_in_the_13_weeks_before_the_origin_form_their_own_segment():
    skus = ["A", "B", "C", "D"]
    actuals = pd.DataFrame(
        {"article_id": skus, "merchant_id": "M", "units_sold": 4.0, "availability": 1.0}
    )
    forecasts = pd.DataFrame([forecast_row(s, 1, 2 if s == "B" else 4, 1, 2, 5) for s in skus])
    history = pd.DataFrame(
        {
            "article_id": ["A", "B", "C", "D"],
            "merchant_id": "M",
            # B: out of stock 13 weeks before W-1 (inside); C: 14 weeks before (outside);
            # D: out of stock in W itself, after the origin W-1.
            "week": [weeks_before(1), weeks_before(13), weeks_before(14), WEEK],
            "units_sold": [4.0, 0.0, 0.0, 0.0],
            "availability": [1.0, 0.0, 0.0, 0.0],
        }
    )

    components = score_week(actuals, forecasts, history, QUANTILES)

    ours = summarize(components.loc[components["model"] == "zeos"], ["recent_stockout"])
    by_segment = ours.set_index("recent_stockout")
    assert by_segment.loc[True, "rows"] == 1 and by_segment.loc[False, "rows"] == 3
    assert by_segment.loc[True, "bias"] == pytest.approx(-0.5)  # B: 2 forecast, 4 sold
    assert by_segment.loc[False, "bias"] == 0.0


# Without history the baselines' series are empty objects: no pandas downcasting warning either.
@pytest.mark.filterwarnings("error::FutureWarning")
def test_a_baseline_without_any_history_counts_as_a_forecast_of_zero():
    actuals = pd.DataFrame(
        {"article_id": ["A"], "merchant_id": "M", "units_sold": [4.0], "availability": [1.0]}
    )
    forecasts = pd.DataFrame([forecast_row("A", 1, 3, 1, 3, 5)])
    history = pd.DataFrame(columns=["article_id", "merchant_id", "week", "units_sold"])

    metrics = summarize(score_week(actuals, forecasts, history, QUANTILES), ["model"])

    baselines = metrics.set_index("model").drop(index="zeos")
    assert (baselines["rows"] == 1).all()
    assert (baselines["bias"] == -1.0).all()  # nothing forecast for 4 sold


def test_a_sku_that_sold_without_a_forecast_from_an_origin_counts_as_zero_for_that_origin():
    """A planner orders nothing for a SKU the forecast left out: its sales are all error."""
    actuals = pd.DataFrame(
        {
            "article_id": ["A", "N"],
            "merchant_id": "M",
            "units_sold": [10.0, 6.0],
            "availability": [1.0, 1.0],
        }
    )
    forecasts = pd.DataFrame(
        [forecast_row("A", 1, 10, 8, 10, 12), forecast_row("A", 2, 10, 8, 10, 12),
         forecast_row("N", 1, 6, 5, 6, 7)]
    )  # fmt: skip
    history = pd.DataFrame(
        {"article_id": ["A", "A"], "merchant_id": "M", "week": [weeks_before(2), weeks_before(1)],
         "units_sold": [10.0, 10.0]}
    )  # fmt: skip

    components = score_week(actuals, forecasts, history, QUANTILES)
    metrics = summarize(components, ["model", "horizon"]).set_index(["model", "horizon"])

    # Origin 1 forecast both SKUs exactly; origin 2 left N (no history then) out.
    assert metrics.loc[("zeos", 1), "rows"] == 2 and metrics.loc[("zeos", 1), "wape"] == 0.0
    assert metrics.loc[("zeos", 2), "rows"] == 2
    assert metrics.loc[("zeos", 2), "bias"] == pytest.approx(-6 / 16)
    assert metrics.loc[("zeos", 2), "coverage_q90"] == pytest.approx(0.5)  # N: 6 above q90 0
    assert metrics.loc[("naive", 2), "bias"] == pytest.approx(-6 / 16)  # N had no history


def test_nothing_to_score_summarizes_to_an_empty_table():
    empty = score_week(
        pd.DataFrame(columns=["article_id", "merchant_id", "units_sold", "availability"]),
        pd.DataFrame([forecast_row("A", 1, 3, 1, 3, 5)]),
        pd.DataFrame(columns=["article_id", "merchant_id", "week", "units_sold"]),
        QUANTILES,
    )

    summary = summarize(empty, ["model", "horizon"])

    assert summary.empty and {"model", "horizon", "rows", "wape"} <= set(summary.columns)


def test_without_availability_in_the_history_no_sku_is_flagged(components):
    assert not components["recent_stockout"].any()


def weekly_units(units: list[float], availability: list[float] | None = None) -> pd.DataFrame:
    """SKU A at M sold `units[k]` in the week k + 1 weeks before WEEK."""
    return pd.DataFrame(
        {
            "article_id": "A",
            "merchant_id": "M",
            "week": [weeks_before(k + 1) for k in range(len(units))],
            "units_sold": units,
            "availability": availability or [1.0] * len(units),
        }
    )


TARGET = pd.DataFrame({"article_id": ["A"], "merchant_id": "M", "week": [WEEK]})


def test_the_in_stock_moving_average_leaves_stockout_weeks_out():
    units = [8.0, 0.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    history = weekly_units(units, [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])

    out = baseline_forecasts(history, weeks_before(1), TARGET).iloc[0]

    assert out["moving_average_in_stock"] == 8.0
    assert out["moving_average"] == 7.0


def test_the_moving_average_quantiles_are_the_empirical_quantiles_of_its_weeks():
    units = [float(k) for k in range(1, 14)]
    history = weekly_units(units)

    out = baseline_forecasts(history, weeks_before(1), TARGET, QUANTILES).iloc[0]

    for column in QUANTILES:
        assert out[f"moving_average_{column}"] == pd.Series(units).quantile(int(column[1:]) / 100)


def test_the_hindsight_level_is_each_skus_mean_over_the_scored_weeks_of_its_origin():
    actual = pd.DataFrame(
        {
            "article_id": ["A", "A", "A", "B", "A"],
            "merchant_id": "M",
            "forecast_week": [weeks_before(3)] * 4 + [weeks_before(2)],
            "actual": [1.0, 5.0, 0.0, 7.0, 9.0],
        }
    )

    level = hindsight_level(actual)["forecast"].tolist()

    assert level == [2.0, 2.0, 2.0, 7.0, 9.0]


@given(
    sales=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    skus=st.integers(1, 5),
    origins=st.integers(1, 3),
)
@settings(max_examples=50, deadline=None)
def test_the_hindsight_level_has_no_bias_at_any_origin(sales, skus, origins):
    n = len(sales)
    actual = pd.DataFrame(
        {
            "article_id": [f"S{i % skus}" for i in range(n)],
            "merchant_id": "M",
            "forecast_week": [weeks_before(1 + i % origins) for i in range(n)],
            "horizon": 1 + np.arange(n) % 4,
            "actual": np.asarray(sales, dtype="float64"),
        }
    )
    history = actual[["article_id", "merchant_id"]].assign(week=weeks_before(20), units_sold=1.0)

    components = point_components(hindsight_level(actual), HINDSIGHT, history)

    per_origin = components.groupby("forecast_week")[["error_sum", "actual_sum"]].sum()
    assert np.allclose(per_origin["error_sum"], 0.0, atol=1e-9 * (1 + per_origin["actual_sum"]))
    assert set(components["model"]) == {HINDSIGHT}
