"""Tests of the forecast settings and of train-and-score on small generated panels."""

import datetime as dt
import threading
from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from core_frames import ORIGIN, history_of, monday, panel_history, sales_row
from hypothesis import given, settings
from hypothesis import strategies as st

from zeos_forecast.core.compute import usable_cores
from zeos_forecast.core.demand import derive_demand
from zeos_forecast.core.features import (
    build_demand_features,
    discount,
    dynamic_columns,
    regular_price_column,
)
from zeos_forecast.core.model import (
    POINT,
    POINT_FACTOR_BOUNDS,
    QUANTILE_MIN_ROWS,
    QUANTILE_ROWS_SHARE,
    RELATIVE_TARGET_QUANTILE,
    TWIN,
    USUAL_WEEKS,
    RelativeInputs,
    _AlongPointPath,
    _Growing,
    average_forests,
    fit_concurrency,
    fit_models,
    future_inputs,
    grow_boosters,
    level_column,
    make_forecaster,
    point_factor,
    quantile_sample,
    train_and_score,
)
from zeos_forecast.core.progress import Progress
from zeos_forecast.core.settings import RELATIVE_POINT_TREES, ForecastSettings, quantile_column
from zeos_forecast.datasets.synthetic import generate_panel

N_SKUS, N_WEEKS, WEEKS_AFTER_ORIGIN = 200, 84, 4
HISTORY_WEEKS = N_WEEKS - WEEKS_AFTER_ORIGIN
# One thread: the machine is shared, and a single thread keeps LightGBM fast and deterministic.
SETTINGS = ForecastSettings(n_estimators=20, history_weeks=HISTORY_WEEKS, threads=1)
KEYS = ["article_id", "merchant_id"]


def build(history: pd.DataFrame, panel) -> pd.DataFrame:
    return build_demand_features(
        history,
        ORIGIN,
        SETTINGS.history_weeks,
        SETTINGS.active_weeks,
        panel.articles,
        panel.merchants,
    )


@pytest.fixture(scope="module")
def panel():
    """A panel running four weeks past the origin, so that there is a future to ignore."""
    last_week = ORIGIN + dt.timedelta(weeks=WEEKS_AFTER_ORIGIN)
    return generate_panel(N_SKUS, N_WEEKS, last_week, seed=7)


@pytest.fixture(scope="module")
def history(panel) -> pd.DataFrame:
    """The panel's sales up to and including the origin week."""
    return panel_history(panel, range(N_WEEKS - WEEKS_AFTER_ORIGIN))


@pytest.fixture(scope="module")
def features(history, panel) -> pd.DataFrame:
    return build(history, panel)


@pytest.fixture(scope="module")
def result(features):
    return train_and_score(features, ORIGIN, SETTINGS)


@pytest.fixture(scope="module")
def table(result) -> pd.DataFrame:
    return result.table


def active_keys(features: pd.DataFrame) -> set[tuple[str, str]]:
    active = features.loc[features["active"], KEYS].drop_duplicates().astype(str)
    return set(active.itertuples(index=False, name=None))


# ---- ForecastSettings ----


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("horizon", 0),
        ("history_weeks", 1),
        ("quantiles", (0.1, 1.2)),
        ("quantiles", (0.0, 0.5)),
        ("quantiles", ()),
        ("quantiles", (0.5, 0.5)),
        ("quantiles", (0.1, 0.1000000001)),
        ("lags", (1, 0)),
        ("rolling_windows", (1,)),
        ("active_weeks", 0),
        ("calibration_weeks", -1),
        ("target_transform", "log"),
        ("predictor", "numba"),
        ("level_twin", "yes"),
        ("point_seeds", 0),
    ],
)
def test_an_invalid_setting_raises_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match="Invalid forecast settings") as caught:
        ForecastSettings(**{field: value})

    assert f"{field} must" in str(caught.value)
    assert str(value) in str(caught.value)


def test_every_invalid_setting_is_reported_at_once():
    with pytest.raises(ValueError) as caught:
        ForecastSettings(horizon=0, lags=(0,))

    assert "horizon must" in str(caught.value) and "lags must" in str(caught.value)


def test_quantiles_are_kept_sorted():
    chosen = ForecastSettings(quantiles=(0.9, 0.1, 0.5, 0.25))

    assert chosen.quantiles == (0.1, 0.25, 0.5, 0.9)
    assert chosen.quantile_columns == ["q10", "q25", "q50", "q90"]


def test_the_defaults_are_valid_and_documented_values():
    defaults = ForecastSettings()

    assert defaults.horizon == 12
    assert defaults.quantiles == (0.1, 0.5, 0.9)
    assert defaults.as_dict()["quantiles"] == (0.1, 0.5, 0.9)


@pytest.mark.parametrize(
    ("level", "column"),
    [(0.1, "q10"), (0.5, "q50"), (0.9, "q90"), (0.05, "q5"), (0.975, "q97.5"), (0.995, "q99.5")],
)
def test_a_quantile_column_is_named_by_its_percent(level, column):
    assert quantile_column(level) == column


@settings(max_examples=50, deadline=None)
@given(permille=st.integers(1, 999))
def test_every_quantile_in_permille_steps_gets_its_exact_percent_name(permille):
    assert quantile_column(permille / 1000) == f"q{permille / 10:g}"


# ---- train_and_score ----


def test_each_active_sku_gets_one_row_per_week_of_the_horizon(table, features):
    horizon = SETTINGS.horizon
    keys = set(table[KEYS].itertuples(index=False, name=None))

    assert keys == active_keys(features)
    assert len(table) == len(keys) * horizon
    horizons = table.groupby(KEYS)["horizon"].apply(list)
    assert all(h == list(range(1, horizon + 1)) for h in horizons)
    expected_week = [ORIGIN + dt.timedelta(weeks=int(h)) for h in table["horizon"]]
    assert table["week"].tolist() == expected_week


def test_discontinued_skus_teach_the_model_but_get_no_forecast(result, features):
    all_skus = features["sku"].nunique()
    active = len(active_keys(features))

    assert active < all_skus  # the panel has discontinued SKUs, which this test is about
    assert result.skus_trained == all_skus
    assert result.skus_scored == active
    assert result.train_rows == len(features)


def test_the_forecast_table_has_the_documented_columns(table):
    assert list(table.columns) == [*KEYS, "week", "horizon", "forecast", "q10", "q50", "q90"]
    assert table["article_id"].map(type).eq(str).all()


def test_the_rows_come_in_the_order_of_their_keys_and_horizons(table):
    ordered = table.sort_values([*KEYS, "horizon"], ignore_index=True)

    pd.testing.assert_frame_equal(table, ordered)


def test_the_forecast_table_has_no_missing_values(table):
    assert not table.isna().any().any(), table[table.isna().any(axis=1)].head()


def test_forecasts_and_quantiles_are_never_negative(table):
    negative = table[["forecast", "q10", "q50", "q90"]] < 0

    assert not negative.any().any()


def test_quantiles_are_ordered_in_every_row(table):
    crossed = (table["q10"] > table["q50"]) | (table["q50"] > table["q90"])  # NaN: another test

    assert not crossed.any(), table.loc[crossed].head()


def test_two_runs_with_the_same_input_and_settings_are_identical(table, features):
    again = train_and_score(features.copy(), ORIGIN, SETTINGS).table

    pd.testing.assert_frame_equal(again, table)


def test_history_after_the_origin_does_not_move_the_forecast(table, panel, history):
    later = panel_history(panel, range(N_WEEKS - WEEKS_AFTER_ORIGIN, N_WEEKS))
    later["units_sold"] *= 50
    later["demand"] *= 50
    later["price"] = 0.01
    newcomer = later.iloc[[0]].assign(article_id="LATE", merchant_id="LATE")
    extended = pd.concat([history, later, newcomer], ignore_index=True)

    moved = train_and_score(build(extended, panel), ORIGIN, SETTINGS).table

    pd.testing.assert_frame_equal(moved, table)


def test_future_inputs_take_each_active_skus_median_of_its_latest_weeks(features):
    dynamic = dynamic_columns(features)

    future = future_inputs(features, ORIGIN, 3, dynamic).frame

    active = features.loc[features["active"]]
    latest = active.loc[active["week"] > pd.Timestamp(ORIGIN) - pd.Timedelta(weeks=USUAL_WEEKS)]
    usual = latest.groupby("sku")[dynamic].median()
    usual["discount"] = discount(usual["price"], usual[regular_price_column(dynamic)])
    assert list(future.columns) == ["unique_id", "ds", *dynamic]
    assert len(future) == 3 * len(usual)
    weeks = future.groupby("unique_id")["ds"].apply(list)
    assert all(w == [monday(-1), monday(-2), monday(-3)] for w in weeks)
    carried = future.set_index("unique_id")[dynamic]
    pd.testing.assert_frame_equal(
        carried, usual.loc[carried.index].astype("float32"), check_names=False, rtol=1e-5
    )


def test_a_promotion_of_the_last_weeks_is_not_carried_over_the_horizon():
    rows = [sales_row("A", "M1", w, price=9.0, list_price=10.0) for w in range(8, 2, -1)]
    rows.append(sales_row("A", "M1", 2, price=6.0, list_price=10.0))  # then no rows: a gap
    frame = build_demand_features(history_of(rows), ORIGIN, 20, 13)

    future = future_inputs(frame, ORIGIN, 4, dynamic_columns(frame)).frame

    # Six weeks at 9.0, then 6.0 carried over the gap to the origin (three weeks): usually 9.0.
    assert future["price"].tolist() == [9.0] * 4
    assert future["discount"].tolist() == pytest.approx([0.1] * 4)
    assert future["ds"].tolist() == [monday(-h) for h in range(1, 5)]


def test_custom_quantiles_and_a_short_horizon_shape_the_table(features):
    custom = ForecastSettings(
        n_estimators=20,
        history_weeks=HISTORY_WEEKS,
        threads=1,
        horizon=3,
        quantiles=(0.95, 0.05),
    )

    table = train_and_score(features, ORIGIN, custom).table

    assert list(table.columns) == [*KEYS, "week", "horizon", "forecast", "q5", "q95"]
    assert table.groupby(KEYS).size().eq(3).all()
    assert set(table["horizon"]) == {1, 2, 3}
    assert len(table) == 3 * len(active_keys(features))
    assert not (table["q5"] > table["q95"]).any()


def test_quantiles_belong_to_their_own_sku_when_some_skus_are_discontinued():
    """SKUs alternate between ~1 and ~1000 units a week; the first one is discontinued."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(40):
        level = 1000.0 if s % 2 else 1.0
        last_week = 30 if s == 0 else 0
        for w in range(40, last_week - 1, -1):
            rows.append(sales_row(f"A{s:02d}", "M1", w, rng.poisson(level), price=5.0))
    frame = build_demand_features(history_of(rows), ORIGIN, 52, 13)
    quick = ForecastSettings(
        n_estimators=20,
        horizon=2,
        lags=(1, 2),
        rolling_windows=(4,),
        threads=1,
        # 1,640 rows of dense demand: the relative-error point's leaves of 340 rows could not
        # split; explicit LightGBM parameters take precedence over its capacity.
        lgbm_params={"min_child_samples": 20},
    )

    table = train_and_score(frame, ORIGIN, quick).table

    big = table["article_id"].str[1:].astype(int) % 2 == 1
    for column in ("forecast", "q10", "q50", "q90"):
        assert table.loc[big, column].min() > table.loc[~big, column].max(), column


def test_a_history_without_prices_or_extra_columns_still_forecasts():
    rows = [sales_row(f"A{s}", "M1", w, 5.0 + s) for s in range(30) for w in range(30, -1, -1)]
    frame = build_demand_features(history_of(rows), ORIGIN, 52, 13)
    assert dynamic_columns(frame) == []
    quick = ForecastSettings(n_estimators=5, horizon=2, lags=(1, 2), threads=1)

    table = train_and_score(frame, ORIGIN, quick).table

    assert len(table) == 30 * 2
    assert table["forecast"].notna().all()


def test_a_seasonal_sku_coming_back_gets_a_forecast_for_every_week_of_the_horizon():
    rows = [sales_row(f"A{s}", "M1", w, 5.0 + s) for s in range(20) for w in range(120, -1, -1)]
    summers = [*range(112, 90, -1), *range(60, 38, -1)]  # the last two seasons
    rows += [sales_row("SUMMER", "M1", w, 8.0) for w in summers]
    frame = build_demand_features(history_of(rows), ORIGIN, 156, 13, returning_weeks=13)
    quick = ForecastSettings(n_estimators=5, horizon=3, lags=(1, 2, 52), threads=1)

    table = train_and_score(frame, ORIGIN, quick).table

    summer = table.loc[table["article_id"] == "SUMMER"]
    assert summer["horizon"].tolist() == [1, 2, 3]
    assert (summer[["forecast", "q10", "q50", "q90"]] >= 0).all(axis=None)
    assert summer["forecast"].notna().all()


def test_a_window_without_any_active_sku_raises_a_value_error():
    history = history_of([sales_row("A", "M1", w) for w in range(40, 20, -1)])
    frame = build_demand_features(history, ORIGIN, 52, 13)

    with pytest.raises(ValueError, match="No active SKU"):
        train_and_score(frame, ORIGIN, SETTINGS)


def test_calibration_offsets_come_per_horizon_and_quantile(result):
    offsets = result.calibration

    assert list(offsets.index) == list(range(1, SETTINGS.calibration_weeks + 1))
    assert list(offsets.columns) == SETTINGS.quantile_columns
    assert np.isfinite(offsets.to_numpy()).all()
    assert result.seconds["calibrate"] > 0


def test_without_calibration_weeks_the_quantiles_are_the_models_own(features):
    plain = ForecastSettings(
        n_estimators=20, history_weeks=HISTORY_WEEKS, threads=1, calibration_weeks=0, horizon=3
    )

    result = train_and_score(features, ORIGIN, plain)

    assert result.calibration is None
    assert "calibrate" not in result.seconds


def test_the_untransformed_mean_model_still_gives_ordered_non_negative_quantiles(features):
    mean = ForecastSettings(
        n_estimators=20,
        history_weeks=HISTORY_WEEKS,
        threads=1,
        horizon=3,
        point_objective="tweedie",
        target_transform="none",
    )

    table = train_and_score(features, ORIGIN, mean).table

    values = table[["q10", "q50", "q90"]].to_numpy()
    assert (values >= 0).all() and (np.diff(values, axis=1) >= 0).all()
    assert table["forecast"].ge(0).all()


@pytest.mark.parametrize(
    ("zero_share", "objective", "point_trees"),
    [
        (0.0, "mape", RELATIVE_POINT_TREES),
        (0.23, "mape", RELATIVE_POINT_TREES),
        (0.25, "tweedie", 100),
        (0.9, "tweedie", 100),
    ],
)
def test_auto_minimises_relative_error_on_dense_demand_and_fits_a_mean_on_intermittent(
    zero_share, objective, point_trees
):
    resolved = ForecastSettings().resolved(zero_share)

    assert resolved.target_transform == "none"
    assert (resolved.point_objective, resolved.point_estimators) == (objective, point_trees)


def test_explicit_choices_are_kept_whatever_the_data():
    chosen = ForecastSettings(
        target_transform="log1p", point_objective="poisson", point_estimators=7
    ).resolved(0.0)

    assert (chosen.target_transform, chosen.point_objective) == ("log1p", "poisson")
    assert chosen.point_estimators == 7
    assert ForecastSettings(target_transform="log1p").resolved(0.0).point_objective == "l2"


def test_the_result_says_which_objective_auto_chose_for_the_window(result, features):
    observed = features.loc[features["weight"] > 0, "demand"]

    assert result.zero_share == pytest.approx(float((observed <= 0).mean()))
    intermittent = result.zero_share >= 1 - 1 / 1.32
    assert result.target_transform == "none"
    assert result.point_objective == ("tweedie" if intermittent else "mape")


def test_the_relative_error_factor_minimises_the_mean_relative_error():
    rng = np.random.default_rng(3)
    actual = rng.lognormal(3.0, 0.6, 400)
    point = actual * rng.lognormal(0.2, 0.3, 400)

    factor = point_factor(point, actual)

    def mape(k: float) -> float:
        return float(np.mean(np.abs(k * point - actual) / actual))

    grid = np.linspace(0.5, 2.0, 301)
    assert mape(factor) <= min(mape(k) for k in grid) + 1e-9
    assert point_factor(point * 100, actual) == POINT_FACTOR_BOUNDS[0]


def test_a_dense_window_gets_a_calibrated_relative_error_point(history, panel):
    sales = history.drop(columns=["censored", "demand"])
    dense = build(derive_demand(sales.assign(units_sold=sales["units_sold"] + 5.0)), panel)
    settings = ForecastSettings(
        n_estimators=10, point_estimators=30, history_weeks=HISTORY_WEEKS, threads=1, horizon=3
    )

    result = train_and_score(dense, ORIGIN, settings)

    assert result.point_objective == "mape"
    factor = result.calibration["forecast"]
    assert factor.nunique() == 1
    assert POINT_FACTOR_BOUNDS[0] <= factor.iloc[0] <= POINT_FACTOR_BOUNDS[1]


# ---- the quantile models' rows ----


def test_quantile_models_draw_each_row_in_proportion_to_its_weight():
    weights = np.array([1.0, 0.5, 0.25, 0.0], dtype="float32")
    weight = np.repeat(weights, QUANTILE_MIN_ROWS)  # beyond the threshold: a share of the rows

    chosen = quantile_sample(weight, seed=3).reshape(len(weights), -1)

    drawn = chosen.mean(axis=1)
    np.testing.assert_allclose(drawn, QUANTILE_ROWS_SHARE * weights, atol=0.004)
    assert not chosen[-1].any()  # weight 0: never


def test_a_small_window_draws_every_fully_weighted_row_for_the_quantile_models():
    weight = np.r_[np.ones(1_000), np.zeros(1_000)].astype("float32")

    chosen = quantile_sample(weight, seed=3)

    assert chosen[:1_000].all() and not chosen[1_000:].any()


def test_quantile_models_follow_the_weights_not_the_row_counts():
    # 60 % of the rows sold 0 but weigh 0.25 (partly stocked weeks), 40 % sold 10 with weight 1:
    # by weight, 27 % of the mass is at 0, so the weighted median is 10 (by rows it would be 0).
    rows = 2_000
    zeros = np.arange(rows) < 0.6 * rows
    x = pd.DataFrame(
        {
            "weight": np.where(zeros, 0.25, 1.0).astype("float32"),
            "lag1": np.zeros(rows, dtype="float32"),
        }
    )
    y = np.where(zeros, 0.0, 10.0).astype("float32")
    fitted = ForecastSettings(
        n_estimators=5, threads=1, target_transform="none", point_objective="l2"
    )
    forecaster = make_forecaster(fitted)

    fit_models(forecaster, x, y, Progress("fitting", 20, "trees", None), fitted)

    inputs = x[["lag1"]].head(1)
    median = forecaster.models_[quantile_column(0.5)].predict(inputs)
    lowest = forecaster.models_[quantile_column(0.1)].predict(inputs)
    assert median[0] == pytest.approx(10.0, abs=0.5)
    assert lowest[0] == pytest.approx(0.0, abs=0.5)


# ---- the level twin ----

LEVEL_COLUMN = level_column(ForecastSettings().rolling_windows)
RELATIVE_COLUMNS = ["lag1", "rolling_mean_lag1_window_size4", LEVEL_COLUMN, "price", "week_of_year"]


def test_the_level_twin_sees_the_target_inputs_as_shares_of_the_level():
    relative = RelativeInputs.of(RELATIVE_COLUMNS, LEVEL_COLUMN)
    matrix = np.array(
        [[4, 2, 2, 9.5, 10], [0, 0, 0, 3.0, 11], [1, 1, np.nan, 3.0, 12]], dtype="float32"
    )

    scaled, level = relative.scale(matrix)

    assert scaled[0].tolist() == [2, 1, 1, 9.5, 10]  # price and calendar stay as they are
    assert level.tolist() == [2, 0, 0]  # no sales so far, or no level yet: no level
    assert matrix[0].tolist() == [4, 2, 2, 9.5, 10]  # the caller's matrix is not changed


@given(
    level=st.floats(0.001, 1e6, allow_nan=False),
    lags=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=2),
)
def test_target_inputs_divided_by_the_level_and_multiplied_back_are_the_inputs(level, lags):
    relative = RelativeInputs.of(RELATIVE_COLUMNS, LEVEL_COLUMN)
    matrix = np.array([[lags[0], lags[1], level, 1.0, 7.0]], dtype="float32")

    scaled, found = relative.scale(matrix)

    restored = scaled[0, relative.scaled] * np.float32(found[0])
    assert restored == pytest.approx(matrix[0, relative.scaled], rel=1e-5)


def test_inputs_without_a_level_get_no_twin():
    assert RelativeInputs.of(["lag1", "price"], LEVEL_COLUMN) is None


def test_the_level_is_the_mean_of_the_longest_rolling_window_of_last_weeks_demand():
    # After a peak, a recent mean follows demand down; the window's mean so far would not.
    assert level_column((4, 13)) == "rolling_mean_lag1_window_size13"
    assert level_column((26, 8)) == "rolling_mean_lag1_window_size26"


class _Stub:
    """A model of fixed predictions (NaN: no forecast for that row), on the frame's values."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype="float64")

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return frame.to_numpy(dtype="float32")

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.values[: len(matrix)]


def test_the_forecast_path_follows_the_mean_of_the_point_model_and_its_twin():
    settings = ForecastSettings(quantiles=(0.5,), threads=1)
    models = {POINT: _Stub([10.0, 10.0]), TWIN: _Stub([20.0, np.nan]), "q50": _Stub([4.0, 6.0])}
    path = _AlongPointPath(models, settings, np.array([1, 2]))

    point = path.predict(pd.DataFrame({"lag1": [1.0, 0.0]}))

    # The second SKU has no level yet: its point model alone.
    assert point.tolist() == [15.0, 10.0]
    assert path.steps[0]["q50"].tolist() == [4.0, 6.0]


def fitted_forecaster(x: pd.DataFrame, y: np.ndarray, settings: ForecastSettings):
    """A forecaster whose models `fit_models` fitted on `x`, `y`."""
    forecaster = make_forecaster(settings)
    fit_models(
        forecaster, x, y, Progress("fitting", settings.trees_per_fit, "trees", None), settings
    )
    return forecaster


def test_a_fitted_twin_forecasts_in_units_and_not_for_skus_without_a_level():
    # Demand is three times the level, whatever the level: the relation the twin learns.
    rng = np.random.default_rng(3)
    level = np.repeat([1.0, 10.0, 100.0], 400).astype("float32")
    x = pd.DataFrame(
        {"weight": np.ones(len(level), dtype="float32"), "lag1": level, LEVEL_COLUMN: level}
    )
    y = (3 * level * rng.uniform(0.9, 1.1, len(level))).astype("float32")
    fitted = ForecastSettings(
        n_estimators=5,
        point_estimators=60,
        threads=1,
        target_transform="none",
        point_objective="l2",
        min_child_samples=20,
        level_twin="on",
    )
    forecaster = fitted_forecaster(x, y, fitted)

    twin = forecaster.models_[TWIN]
    inputs = pd.DataFrame({"lag1": [1.0, 100.0, 0.0], LEVEL_COLUMN: [1.0, 100.0, 0.0]})
    predicted = twin.predict(inputs)
    assert predicted[:2] == pytest.approx([3.0, 300.0], rel=0.1)
    assert np.isnan(predicted[2])


def test_quantile_models_grow_their_own_number_of_trees_and_the_point_keeps_its_own():
    rng = np.random.default_rng(5)
    lag = rng.uniform(0, 50, 3_000).astype("float32")
    x = pd.DataFrame({"weight": np.ones(len(lag), dtype="float32"), "lag1": lag})
    y = (lag + rng.normal(0, 5, len(lag))).clip(0).astype("float32")
    fitted = ForecastSettings(
        n_estimators=12,
        quantile_estimators=4,
        threads=1,
        target_transform="none",
        point_objective="l2",
        level_twin="off",
    ).resolved(0.0)
    forecaster = fitted_forecaster(x, y, fitted)

    trees = {name: model.booster_.num_trees() for name, model in forecaster.models_.items()}
    assert trees == {"forecast": 12, "q10": 4, "q50": 4, "q90": 4}
    assert fitted.trees_per_fit == 12 + 3 * 4


def test_without_quantile_estimators_the_quantile_models_grow_n_estimators_trees():
    resolved = ForecastSettings(n_estimators=30).resolved(0.5)

    assert resolved.quantile_estimators == 30
    assert resolved.trees_per_fit == 2 * 30 + 3 * 30


@settings(max_examples=20, deadline=None)
@given(forests=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_averaged_forests_predict_the_mean_of_their_forests(forests, seed):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {"lag1": rng.uniform(0, 9, 400), "store": pd.Categorical(rng.integers(0, 4, 400))}
    )
    y = x["lag1"] * (1 + x["store"].cat.codes) + rng.normal(0, 1, 400)
    params = {"objective": "mape", "num_leaves": 7, "min_child_samples": 5, "verbosity": -1,
              "subsample": 0.7, "subsample_freq": 1, "colsample_bytree": 0.5}  # fmt: skip
    boosters = [
        lgb.train({**params, "seed": seed + i}, lgb.Dataset(x, y), num_boost_round=8)
        for i in range(forests)
    ]

    averaged = average_forests(boosters)

    mean = np.mean([booster.predict(x) for booster in boosters], axis=0)
    # (a forest stops early when no leaf can split any further: count what each one grew)
    assert averaged.num_trees() == sum(booster.num_trees() for booster in boosters)
    np.testing.assert_allclose(averaged.predict(x), mean, rtol=1e-12, atol=1e-12)


def test_a_randomized_point_averages_point_seeds_forests_the_first_of_them_the_single_point():
    rng = np.random.default_rng(11)
    lag = rng.uniform(1, 50, 3_000).astype("float32")
    x = pd.DataFrame({"weight": np.ones(len(lag), dtype="float32"), "lag1": lag})
    y = (lag * rng.uniform(0.7, 1.3, len(lag))).astype("float32")
    fitted = {
        seeds: ForecastSettings(
            n_estimators=3, point_estimators=10, point_seeds=seeds, threads=1,
            point_objective="mape", level_twin="off", calibrate_point=False,
        ).resolved(0.0)
        for seeds in (1, 3)
    }  # fmt: skip
    single = fitted_forecaster(x, y, fitted[1]).models_[POINT].booster_
    averaged = fitted_forecaster(x, y, fitted[3]).models_[POINT].booster_

    inputs = x[["lag1"]]
    assert (fitted[1].point_forests, fitted[3].point_forests) == (1, 3)
    assert averaged.num_trees() == 30 and fitted[3].trees_per_fit == 30 + 3 * 3
    first = averaged.predict(inputs, num_iteration=10) * 3
    np.testing.assert_allclose(first, single.predict(inputs), rtol=1e-6)
    assert not np.allclose(averaged.predict(inputs), single.predict(inputs))


@pytest.mark.parametrize(
    ("changes", "forests"),
    [
        ({"point_objective": "mape"}, 3),  # TSPerf's feature and row bagging
        ({"point_objective": "mape", "point_seeds": 5}, 5),
        (
            {"point_objective": "mape", "lgbm_params": {"colsample_bytree": 1.0, "subsample": 1.0}},
            1,
        ),
        ({"point_objective": "tweedie"}, 1),  # draws nothing: one forest
        ({"point_objective": "tweedie", "feature_fraction": 0.8}, 3),
        ({"point_objective": "tweedie", "bagging_fraction": 0.8}, 1),  # never drawn again
        ({"point_objective": "tweedie", "bagging_fraction": 0.8, "bagging_freq": 2}, 3),
        (
            {"point_objective": "l2", "lgbm_params": {"bagging_fraction": 0.5, "bagging_freq": 1}},
            3,
        ),
    ],
)
def test_only_a_point_that_draws_inputs_or_rows_at_random_is_averaged_over_seeds(changes, forests):
    assert ForecastSettings(**changes).resolved(0.0).point_forests == forests


def test_without_the_level_twin_only_the_point_model_forecasts(features, table):
    settings = replace(SETTINGS, level_twin="off")

    alone = train_and_score(features, ORIGIN, settings).table

    # A mean point (intermittent demand): as many trees as each quantile model, once, not twice.
    assert settings.resolved(0.5).trees_per_fit == 4 * SETTINGS.n_estimators
    assert SETTINGS.resolved(0.5).trees_per_fit == 5 * SETTINGS.n_estimators
    assert not np.allclose(alone["forecast"], table["forecast"])


@pytest.mark.parametrize(
    ("zero_share", "objective", "twin"),
    [(0.5, "tweedie", "on"), (0.1, "mape", "off")],
)
def test_auto_fits_a_level_twin_for_a_mean_point_and_none_for_a_relative_error_point(
    zero_share, objective, twin
):
    resolved = ForecastSettings().resolved(zero_share)

    assert (resolved.point_objective, resolved.level_twin) == (objective, twin)


def test_a_forced_level_twin_is_kept_whatever_the_objective():
    assert ForecastSettings(level_twin="on").resolved(0.1).level_twin == "on"
    assert ForecastSettings(level_twin="off").resolved(0.5).level_twin == "off"


def test_one_spike_of_a_slow_seller_does_not_blow_up_its_twins_forecast():
    # 1,000 rows selling about their level, and one data error: 4,242 units where 2 sell.
    rng = np.random.default_rng(5)
    level = rng.uniform(1.0, 3.0, 1_000).astype("float32")
    y = (level * rng.uniform(0.8, 1.2, len(level))).astype("float32")
    y[0], level[0] = 4_242.0, 2.0
    x = pd.DataFrame(
        {"weight": np.ones(len(level), dtype="float32"), "lag1": level, LEVEL_COLUMN: level}
    )
    fitted = ForecastSettings(
        n_estimators=5,
        point_estimators=60,
        threads=1,
        point_objective="l2",
        target_transform="none",
        min_child_samples=20,
        level_twin="on",
    )
    forecaster = fitted_forecaster(x, y, fitted)

    # The twin learnt relative demand capped at its 99th percentile: about 1.2 x the level.
    assert RELATIVE_TARGET_QUANTILE == 0.99
    predicted = forecaster.models_[TWIN].predict(x.drop(columns="weight"))
    assert (predicted / level).max() < 2


# ---- threads ----


def _fitted_with(**threads) -> dict:
    rng = np.random.default_rng(0)
    level = rng.uniform(1.0, 10.0, 500).astype("float32")
    x = pd.DataFrame({"weight": np.ones(500, dtype="float32"), "lag1": level})
    settings = ForecastSettings(
        n_estimators=3, quantiles=(0.5,), level_twin="off", point_objective="l2", **threads
    )
    forecaster = make_forecaster(settings)
    fit_models(
        forecaster, x, level, Progress("fitting", settings.trees_per_fit, "trees", None), settings
    )
    return forecaster.models_


def test_lightgbm_trains_on_one_thread_and_scores_on_every_core_by_default():
    for model in _fitted_with(threads=0).values():
        assert model.booster_.params["num_threads"] == 1
        assert model.threads == usable_cores()


def test_fit_threads_0_trains_on_every_core():
    for model in _fitted_with(threads=1, fit_threads=0).values():
        assert model.booster_.params["num_threads"] == usable_cores()
        assert model.threads == 1


def _five_models_fitted_with(**threads) -> dict[str, str]:
    """The point, its twin and three quantiles fitted on 20,000 rows: each model's text."""
    rng = np.random.default_rng(11)
    level = rng.uniform(0.5, 30.0, 20_000).astype("float32")
    y = rng.poisson(level).astype("float32")
    x = pd.DataFrame(
        {
            "weight": rng.choice([0.5, 1.0], len(level)).astype("float32"),
            "lag1": rng.poisson(level).astype("float32"),
            LEVEL_COLUMN: level,
            "price": rng.uniform(1.0, 2.0, len(level)).astype("float32"),
        }
    )
    settings = ForecastSettings(
        n_estimators=20,
        point_estimators=20,
        point_objective="tweedie",
        level_twin="on",
        **threads,
    )
    forecaster = make_forecaster(settings)
    trees = Progress("fitting", settings.trees_per_fit, "trees", None)
    fit_models(forecaster, x, y, trees, settings)
    assert trees.done == settings.trees_per_fit
    return {name: model.booster_.model_to_string() for name, model in forecaster.models_.items()}


def test_models_grown_side_by_side_are_the_models_grown_one_after_the_other():
    side_by_side = _five_models_fitted_with(threads=2, fit_threads=1)
    one_after_another = _five_models_fitted_with(threads=1, fit_threads=1)

    assert set(side_by_side) == {"forecast", TWIN, "q10", "q50", "q90"}
    assert side_by_side == one_after_another


@pytest.mark.parametrize(
    ("threads", "fit_threads", "at_once"),
    [(2, 1, 2), (1, 1, 1), (2, 2, 1), (8, 3, 2), (1, 4, 1), (0, 0, 1)],
)
def test_as_many_models_grow_at_once_as_the_cores_hold_at_fit_threads_each(
    threads, fit_threads, at_once
):
    settings = ForecastSettings(threads=threads, fit_threads=fit_threads)

    assert fit_concurrency(settings) == at_once


def test_every_core_grows_a_model_by_default():
    assert fit_concurrency(ForecastSettings()) == usable_cores()


@pytest.mark.parametrize("field", ["threads", "fit_threads"])
def test_a_negative_thread_count_is_refused(field):
    with pytest.raises(ValueError, match="fit_threads must be >= 0"):
        ForecastSettings(**{field: -1})


def promotion_panel(seed: int = 3) -> pd.DataFrame:
    """60 SKUs selling about 10 a week, three times that in the quarter of weeks on promotion."""
    rng = np.random.default_rng(seed)
    rows = []
    for sku in range(60):
        for week in range(80, -1, -1):
            on_promotion = rng.random() < 0.25
            rows.append(
                sales_row(
                    f"A{sku:02d}", "M1", week,
                    units_sold=float(rng.poisson(30.0 if on_promotion else 10.0)),
                    price=7.0 if on_promotion else 10.0, list_price=10.0,
                    promo=float(on_promotion),
                )
            )  # fmt: skip
    return build_demand_features(history_of(rows), ORIGIN, 80, 13)


@pytest.fixture(scope="module")
def promotions() -> pd.DataFrame:
    return promotion_panel()


def test_without_plans_the_promotion_inputs_are_left_out_and_the_forecast_counts_promotions(
    promotions,
):
    """Promotions will come in a quarter of the weeks: the mean week sells 0.75·10 + 0.25·30."""
    settings = replace(SETTINGS, horizon=4, calibration_weeks=0, point_objective="l2")

    dropped = train_and_score(promotions, ORIGIN, settings)
    usual = train_and_score(promotions, ORIGIN, replace(settings, unplanned_inputs="usual"))

    assert dropped.left_out == ["price", "promo", "discount"]  # the regular price stays
    assert usual.left_out == []
    assert dropped.table[POINT].mean() == pytest.approx(15.0, rel=0.15)
    assert usual.table[POINT].mean() == pytest.approx(10.0, rel=0.15)  # weeks without promotion


def test_inputs_planned_for_most_of_the_horizon_are_kept(promotions):
    skus = promotions.drop_duplicates("sku")["article_id"]
    plans = pd.DataFrame(
        [
            {"article_id": a, "merchant_id": "M1", "week": monday(-h), "price": 7.0, "promo": 1.0}
            for a in skus
            for h in (1, 2, 3)
        ]
    )  # three of the four weeks: planned; the list price needs none
    settings = replace(SETTINGS, horizon=4, calibration_weeks=0, point_objective="l2")

    result = train_and_score(promotions, ORIGIN, settings, plans=plans)

    assert result.left_out == []
    assert result.planned_share["promo"] == pytest.approx(0.75)
    by_week = result.table.groupby("horizon")[POINT].mean()
    assert by_week.loc[1] > 1.8 * by_week.loc[4]  # a planned promotion week, then a week without


def test_models_grown_side_by_side_say_nothing_on_the_console(capfd):
    _five_models_fitted_with(threads=2, fit_threads=1)

    printed = capfd.readouterr()
    assert "[LightGBM]" not in printed.out + printed.err


def test_while_models_grow_side_by_side_no_thread_changes_lightgbm_s_thread_count(monkeypatch):
    """LightGBM's thread count is one for the process: a call on one pool thread that set it to
    all cores, while a booster on another was in the middle of a tree, crashed a run (SIGFPE)."""
    named: list[object] = []

    class Recorded(lgb.Dataset):
        def __init__(self, *args, params=None, **kwargs):
            if threading.current_thread().name.startswith("fit"):
                named.append((params or {}).get("num_threads"))
            super().__init__(*args, params=params, **kwargs)

    monkeypatch.setattr(lgb, "Dataset", Recorded)
    _five_models_fitted_with(threads=2, fit_threads=1)

    assert len(named) == 5  # one call per booster, on the thread that grows it
    assert named == [1] * 5  # the boosters' own thread count, never "all cores"


@pytest.mark.parametrize("objective", ["mape", "tweedie", "quantile"])
def test_a_booster_grown_beside_another_is_the_one_lgb_train_makes(objective):
    rng = np.random.default_rng(4)
    inputs = rng.uniform(0.0, 10.0, (5_000, 4))
    label = rng.poisson(1.0 + inputs[:, 0]).astype("float64") + 1.0
    params = {
        "objective": objective,
        "num_leaves": 31,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.65,
        "bagging_fraction": 0.87,
        "bagging_freq": 3,
        "num_threads": 1,
        "deterministic": True,
        "seed": 0,
        "verbosity": -1,
    }

    def rows() -> lgb.Dataset:
        return lgb.Dataset(inputs, label=label, params={"verbosity": -1, "seed": 0})

    trained = lgb.train(params, rows(), num_boost_round=30)
    growing = {
        "this": _Growing.of(params, rows(), 30),
        "another": _Growing.of({**params, "objective": "l2"}, rows(), 30),
    }
    grown = grow_boosters(growing, Progress("fitting", 60, "trees", None), concurrency=2)

    def trees(booster: lgb.Booster) -> str:
        return booster.model_to_string().split("\nparameters:")[0]

    assert trees(grown["this"]) == trees(trained)
