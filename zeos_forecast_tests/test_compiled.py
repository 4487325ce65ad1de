"""Forests compiled to native code score exactly as LightGBM does, once per process."""

import pickle
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from core_frames import ORIGIN, panel_history

from zeos_forecast.core import compiled
from zeos_forecast.core.features import build_demand_features
from zeos_forecast.core.model import (
    FittedBooster,
    average_forests,
    compile_for_scoring,
    train_and_score,
)
from zeos_forecast.core.settings import ForecastSettings
from zeos_forecast.datasets.synthetic import generate_panel

ROWS, COLUMNS = 4_000, 6


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    """Model inputs as scoring builds them: float32, a coded categorical, missing cells."""
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(ROWS, COLUMNS)).astype("float32")
    matrix[:, 0] = rng.integers(0, 12, ROWS)
    matrix[rng.random(matrix.shape) < 0.05] = np.nan
    return matrix


def fitted(inputs: np.ndarray, objective: dict, compile_it: bool) -> FittedBooster:
    target = np.abs(np.nan_to_num(inputs[:, 1]) * 3 + np.nan_to_num(inputs[:, 0]))
    data = lgb.Dataset(inputs, label=target, categorical_feature=[0], free_raw_data=False)
    params = {**objective, "num_leaves": 15, "verbosity": -1, "num_threads": 1, "seed": 0}
    booster = lgb.train(params, data, num_boost_round=30)
    columns = [f"x{i}" for i in range(COLUMNS)]
    return FittedBooster(booster, columns, {}, compiled=compile_it)


@pytest.mark.parametrize(
    "objective",
    [{"objective": "l2"}, {"objective": "tweedie"}, {"objective": "quantile", "alpha": 0.9}],
    ids=["l2", "tweedie", "quantile"],
)
def test_a_compiled_forest_scores_as_lightgbm_does(inputs, objective):
    native = fitted(inputs, objective, compile_it=True)
    plain = FittedBooster(native.booster_, native.columns, {}, compiled=False)

    np.testing.assert_allclose(native.predict(inputs), plain.predict(inputs), rtol=1e-9)


def test_averaged_forests_compile_and_score_as_lightgbm_does(inputs):
    drawn = {"objective": "mape", "bagging_fraction": 0.8, "bagging_freq": 1}
    forests = [
        fitted(inputs, {**drawn, "bagging_seed": seed}, compile_it=False).booster_
        for seed in (1, 2, 3)
    ]
    averaged = average_forests(forests)
    native = FittedBooster(averaged, [f"x{i}" for i in range(COLUMNS)], {}, compiled=True)

    mean = np.mean([forest.predict(inputs) for forest in forests], axis=0)
    np.testing.assert_allclose(native.predict(inputs), mean, rtol=1e-9)


def test_a_model_is_compiled_once_per_process(inputs):
    text = fitted(inputs, {"objective": "l2"}, compile_it=True).booster_.model_to_string()

    assert compiled.compiled(text) is compiled.compiled(text)


def test_a_pickled_model_leaves_its_machine_code_behind_and_compiles_again(inputs):
    model = fitted(inputs, {"objective": "l2"}, compile_it=True)
    expected = model.predict(inputs)

    copy = pickle.loads(pickle.dumps(model))
    assert copy._text is None
    np.testing.assert_array_equal(copy.predict(inputs), expected)


def test_forests_compiled_side_by_side_in_child_processes_score_as_lightgbm_does(inputs):
    objectives = [{"objective": "huber"}, {"objective": "quantile", "alpha": 0.3}]
    models = [fitted(inputs, objective, compile_it=True) for objective in objectives]

    compiled.compile_all([model.text() for model in models], processes=2)

    for model in models:
        plain = FittedBooster(model.booster_, model.columns, {}, compiled=False)
        np.testing.assert_allclose(model.predict(inputs), plain.predict(inputs), rtol=1e-9)


def test_a_forest_that_fails_to_compile_in_a_child_process_says_so():
    with pytest.raises(RuntimeError, match="Compiling forests in a child process failed: exit"):
        compiled.compile_all(["not a LightGBM model", "nor this"], processes=2)


def test_the_forecast_is_the_same_whichever_predictor_scores_it():
    panel = generate_panel(120, 70, ORIGIN, seed=11)
    history = panel_history(panel, range(70))
    features = build_demand_features(history, ORIGIN, 70, 13, panel.articles, panel.merchants)
    base = {"n_estimators": 20, "history_weeks": 70, "threads": 1, "horizon": 4}

    native = train_and_score(features, ORIGIN, ForecastSettings(**base, predictor="compiled"))
    plain = train_and_score(features, ORIGIN, ForecastSettings(**base, predictor="lightgbm"))

    pd.testing.assert_frame_equal(native.table, plain.table, rtol=1e-6)


@pytest.mark.parametrize(
    ("predictor", "predictions", "compiles"),
    [
        ("auto", compiled.COMPILE_MIN_PREDICTIONS - 1, False),
        ("auto", compiled.COMPILE_MIN_PREDICTIONS, True),
        ("compiled", 1, True),
        ("lightgbm", 10**9, False),
    ],
)
def test_forests_are_compiled_only_where_the_scoring_pays_for_it_or_when_asked(
    inputs, predictor, predictions, compiles
):
    model = fitted(inputs, {"objective": "l2"}, compile_it=False)
    forecaster = SimpleNamespace(models_={"forecast": model})
    lines = []

    seconds = compile_for_scoring(
        forecaster, predictions, ForecastSettings(predictor=predictor), lines.append
    )

    assert model.compiled is compiles
    assert (seconds is not None) is compiles
    assert len(lines) == int(compiles)
