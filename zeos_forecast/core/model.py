"""Train and score in one step: a global LightGBM model through mlforecast, for every active SKU.

One `MLForecast` computes the features once and fits a point model plus one LightGBM quantile
model per level on the same rows. Scoring is recursive along the point forecast: at each step the
point model's features (lags fed with its own forecasts) are captured and every quantile model is
evaluated on them, so all quantiles describe the same expected path instead of drifting apart on
paths of their own. Nothing is saved: the models live only inside this call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import ExpandingMean, RollingMean, RollingStd
from mlforecast.target_transforms import GlobalSklearnTransformer
from sklearn.preprocessing import FunctionTransformer

from .compiled import (
    COMPILE_MIN_PREDICTIONS,
    CompiledForest,
    compile_all,
    compiled,
    model_digest,
)
from .compute import usable_cores
from .contract import KEY_COLUMNS
from .features import discount, dynamic_columns, regular_price_column, static_columns
from .progress import Progress, Report
from .settings import RELATIVE_ERROR_OBJECTIVES, ForecastSettings

__all__ = [
    "ForecastResult",
    "FutureInputs",
    "future_inputs",
    "level_column",
    "modelled_inputs",
    "train_and_score",
    "week_of_year",
]

POINT = "forecast"
# The point model's twin that learns demand relative to each SKU's level (`level_twin`).
TWIN = "forecast_level"
# Inputs computed from the target (lags and their windows): the twin sees them divided by the
# level, so that slow and fast sellers share one pattern of relative movements.
TARGET_INPUT_PREFIXES = ("lag", "rolling_", "expanding_")
# Rows whose level is at most this (a SKU without sales so far) have no relative demand: the
# twin neither learns from them nor forecasts them, the point model alone does.
LEVEL_FLOOR = 1e-6
# The twin learns typical relative movements: its target (demand / level) is capped at this
# quantile of the training rows' relative demand, so that one spike of a slow seller (a data error
# of 4,242 units where 2 sell) cannot fill leaves with thousands of times their level; the point
# model, in units, still sees such weeks as they are.
RELATIVE_TARGET_QUANTILE = 0.99
# Beyond this many training rows, the quantile models fit on this share of them (`fit_models`).
QUANTILE_MIN_ROWS = 300_000
QUANTILE_ROWS_SHARE = 1 / 3
# Without a plan, a future SKU-week takes the SKU's median input of this many latest weeks.
USUAL_WEEKS = 13
# The calibration fit needs some history before the held-back weeks.
MIN_CALIBRATION_HISTORY_WEEKS = 13
FREQ = "W-MON"
# The point's calibration factor stays within these bounds (`point_factor`).
POINT_FACTOR_BOUNDS = (0.5, 2.0)
TOP_FEATURES = 10
# An input counts as planned when plans hold its value for at least this share of the horizon's
# SKU-weeks: the calibration then takes its realised values, and `modelled_inputs` keeps it.
PLANNED_SHARE = 0.5


@dataclass
class ForecastResult:
    """The forecast table and what a person wants to know about how it was made."""

    table: pd.DataFrame
    train_rows: int
    skus_trained: int
    skus_scored: int
    seconds: dict[str, float]
    feature_importance: pd.Series
    lgbm_params: dict[str, Any] = field(default_factory=dict)
    planned_share: dict[str, float] = field(default_factory=dict)
    calibration: pd.DataFrame | None = None
    zero_share: float = 0.0
    target_transform: str = ""
    point_objective: str = ""
    left_out: list[str] = field(default_factory=list)
    rows: int = 0
    forecast_sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.rows and len(self.table):
            self.rows = len(self.table)
            self.forecast_sum = float(self.table[POINT].sum())


def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    """ISO week number (1..53): yearly seasonality as a calendar feature."""
    return pd.DatetimeIndex(dates).isocalendar().week.to_numpy(dtype="int16")


def train_and_score(
    features: pd.DataFrame,
    origin: dt.date,
    settings: ForecastSettings,
    report: Report | None = None,
    plans: pd.DataFrame | None = None,
) -> ForecastResult:
    """Fits the models on the window and forecasts `origin + 1 .. origin + horizon` for active SKUs.

    Args:
        features: The frame of `build_demand_features` for this origin.
        origin: The forecast origin (last observed Monday); no row after it is used.
        settings: Horizon, quantiles, features and LightGBM parameters.
        report: Receives progress lines (trees fitted, ETA).
        plans: Known future inputs (keys, `week`, planned prices and promotion columns) for the
            horizon's weeks; where a SKU-week has no plan, the SKU's usual value (`future_inputs`).

    Returns:
        A `ForecastResult` whose table has `article_id`, `merchant_id`, `week`, `horizon`,
        `forecast` and one `q<percent>` column per quantile: non-negative, quantiles ordered.
    """
    seconds: dict[str, float] = {}
    origin_ts = pd.Timestamp(origin)
    features = features.loc[features["week"] <= origin_ts]
    dynamic, static = dynamic_columns(features), static_columns(features)
    active_ids = np.sort(features.loc[features["active"], "sku"].unique())
    if len(active_ids) == 0:
        raise ValueError(
            f"No active SKU at {origin}: no SKU has sales rows in the last "
            f"{settings.active_weeks} weeks of the window, nor sold in the "
            f"{settings.returning_weeks} weeks after the origin's week a year earlier."
        )
    observed = features.loc[features["weight"] > 0, "demand"]
    zero_share = float((observed <= 0).mean()) if len(observed) else 0.0
    settings = settings.resolved(zero_share)
    fits = 2 if settings.calibration_weeks else 1
    per_fit = settings.trees_per_fit
    trees = Progress("fitting LightGBM", per_fit * fits, "trees", report)
    dynamic, left_out = modelled_inputs(
        dynamic, plans, origin_ts, settings.horizon, len(active_ids), settings
    )
    future = future_inputs(features, origin, settings.horizon, dynamic, plans)
    offsets = None
    if settings.calibration_weeks:
        started = time.perf_counter()
        planned = [c for c, share in future.planned_share.items() if share >= PLANNED_SHARE]
        offsets = _calibration_offsets(
            features, origin_ts, active_ids, dynamic, static, settings, trees, planned
        )
        seconds["calibrate"] = time.perf_counter() - started
        if offsets is None:  # too little history before the held-back weeks: one fit only
            trees.total -= per_fit
    fitted = _fit_and_score(
        features, origin_ts, active_ids, future.frame, dynamic, static, settings, trees
    )
    seconds |= fitted.seconds
    started = time.perf_counter()
    table = _assemble(fitted.scores, features, origin_ts, settings, offsets)
    seconds["predict"] += time.perf_counter() - started
    forecaster = fitted.forecaster
    booster = forecaster.models_[POINT].booster_
    importance = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    importance = (importance / max(importance.sum(), 1e-12)).sort_values(ascending=False)
    return ForecastResult(
        table=table,
        train_rows=fitted.train_rows,
        skus_trained=int(features["sku"].nunique()),
        skus_scored=len(active_ids),
        seconds=seconds,
        feature_importance=importance.head(TOP_FEATURES),
        lgbm_params=_lgbm_params(settings),
        planned_share=future.planned_share,
        calibration=offsets,
        zero_share=zero_share,
        target_transform=settings.target_transform,
        point_objective=settings.point_objective,
        left_out=left_out,
    )


def modelled_inputs(
    dynamic: list[str],
    plans: pd.DataFrame | None,
    origin: pd.Timestamp,
    horizon: int,
    active_skus: int,
    settings: ForecastSettings,
) -> tuple[list[str], list[str]]:
    """The price and promotion inputs the models use, and those left out as unplanned.

    With `unplanned_inputs: drop`, an input counts as planned when the plans hold a value for
    it in at least half of the horizon's SKU-weeks (`active_skus × horizon`; plan rows of the
    horizon's weeks with a value); the others are left out, so that the models forecast the
    average week rather than a week at the usual value (no promotion) when promotions will
    come anyway. The regular price (`list_price`, else `reference_price`) always stays: it
    changes seldom, and its usual value is what it will be. `discount` follows the prices: it
    stays when `price` is planned. Both engines decide with this function, from the plans alone.
    """
    if settings.unplanned_inputs == "usual" or not dynamic:
        return list(dynamic), []
    # The regular price changes seldom: its usual value is what it will be.
    regular = regular_price_column(dynamic)
    planned = {regular} & set(dynamic)
    if plans is not None and len(plans):
        weeks = pd.to_datetime(plans["week"])
        ahead = plans.loc[(weeks > origin) & (weeks <= origin + pd.Timedelta(weeks=horizon))]
        enough = PLANNED_SHARE * max(active_skus * horizon, 1)
        planned |= {c for c in dynamic if c in ahead.columns and ahead[c].notna().sum() >= enough}
    if "price" in planned and "discount" in dynamic:
        planned.add("discount")
    return [c for c in dynamic if c in planned], [c for c in dynamic if c not in planned]


@dataclass
class _Fitted:
    scores: pd.DataFrame
    forecaster: MLForecast
    train_rows: int
    seconds: dict[str, float]


def _fit_and_score(
    features: pd.DataFrame,
    origin: pd.Timestamp,
    ids: np.ndarray,
    future: pd.DataFrame,
    dynamic: list[str],
    static: list[str],
    settings: ForecastSettings,
    trees: Progress,
    horizon: int | None = None,
) -> _Fitted:
    """One MLForecast fit on the rows up to `origin`, scored `horizon` weeks ahead for `ids`.

    Returns raw scores (`unique_id`, `ds`, the point and every quantile, on the demand scale).
    """
    horizon = horizon or settings.horizon
    started = time.perf_counter()
    train = features.loc[
        features["week"] <= origin, ["sku", "week", "demand", "weight", *dynamic, *static]
    ].rename(columns={"sku": "unique_id", "week": "ds", "demand": "y"})
    forecaster = make_forecaster(settings)
    x, y = forecaster.preprocess(
        train,
        static_features=static,
        weight_col="weight",
        dropna=False,
        return_X_y=True,
        validate_data=False,
    )
    del train
    x, y = training_sample(x, y, settings.train_rows, settings.seed)
    fit_models(forecaster, x, y, trees, settings)
    seconds = {"fit": time.perf_counter() - started}
    train_rows = len(x)
    del x, y
    compiling = compile_for_scoring(forecaster, len(ids) * horizon, settings, trees.report)
    if compiling is not None:
        seconds["compile"] = compiling

    started = time.perf_counter()
    scores = score(forecaster, ids, future if dynamic else None, origin, settings, horizon)
    seconds["predict"] = time.perf_counter() - started
    return _Fitted(scores, forecaster, train_rows, seconds)


def make_forecaster(settings: ForecastSettings) -> MLForecast:
    """The MLForecast of these settings: the point model plus one quantile model per level."""
    params = _lgbm_params(settings)
    models = {POINT: lgb.LGBMRegressor(objective=settings.point_objective, **params)}
    models |= {
        column: lgb.LGBMRegressor(objective="quantile", alpha=level, **params)
        for level, column in zip(settings.quantiles, settings.quantile_columns, strict=True)
    }
    return MLForecast(
        models=models,
        freq=FREQ,
        lags=list(settings.lags),
        lag_transforms={
            1: [
                *(RollingMean(window_size=w) for w in settings.rolling_windows),
                RollingStd(window_size=max(settings.rolling_windows)),
                ExpandingMean(),
            ]
        },
        date_features=[week_of_year, "month"],
        target_transforms=_target_transforms(settings),
        num_threads=_cores(settings.threads),
    )


def level_column(rolling_windows: tuple[int, ...]) -> str:
    """A row's level for the twin: the SKU's mean demand over the longest rolling window.

    The window ends the week before, and mlforecast computes it anyway, so the recursion updates
    it with the forecast itself. A recent mean rather than the mean of the whole window: after a
    season's peak or a change of regime the level follows demand down within a quarter. A SKU
    with fewer weeks than the window has no level yet; its point model alone forecasts it.
    """
    return f"rolling_mean_lag1_window_size{max(rolling_windows)}"


def training_sample(
    x: pd.DataFrame, y: np.ndarray, max_rows: int, seed: int, share: float | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows the models are fitted on: all of them, or a uniform sample of observed rows.

    Up to `max_rows` training rows with weight > 0, every model fits on every row (unobserved
    weeks included, with weight 0, as before). Beyond that, each observed row is kept with the
    same probability `share` (default `max_rows / observed rows`, so about `max_rows` remain),
    drawn from `seed`: every SKU and every week is represented in proportion to its history,
    and weight-0 rows, which teach the models nothing, are left out.
    """
    observed = x["weight"].to_numpy() > 0
    n_observed = int(observed.sum())
    if share is None:
        if n_observed <= max_rows:
            return x, y
        share = max_rows / n_observed
    keep = observed & (np.random.default_rng(seed).random(len(x)) < share)
    return x.loc[keep].reset_index(drop=True), y[keep]


def fit_models(
    forecaster: MLForecast,
    x: pd.DataFrame,
    y: np.ndarray,
    trees: Progress,
    settings: ForecastSettings,
) -> None:
    """Fits every model of the settings on the same rows, reporting trees as they are built.

    mlforecast computed `x` (`MLForecast.preprocess`) and scores with the models (`predict`);
    the fit itself bins the rows once: the point model fits on them weighted, the quantile
    models on the rows `quantile_sample` draws, binned the same way.
    """
    weight = x["weight"].to_numpy(dtype="float32")
    inputs = x.drop(columns="weight")
    categories = {
        c: inputs[c].cat.categories
        for c in inputs.columns
        if isinstance(inputs[c].dtype, pd.CategoricalDtype)
    }
    matrix = as_matrix(inputs, categories)
    label = np.asarray(y, dtype="float32")
    described = {"feature_name": list(inputs.columns), "categorical_feature": list(categories)}
    dataset = lgb.Dataset(
        matrix,
        label=label,
        weight=weight,
        free_raw_data=False,
        params={"verbosity": -1, "seed": settings.seed},
        **described,
    )
    params = _lgbm_params(settings)
    rounds = params.pop("n_estimators")
    params["num_threads"] = params.pop("n_jobs")
    params["seed"] = params.pop("random_state")
    # A relative-error point takes TSPerf's capacity, unless `lgbm_params` set it explicitly.
    objectives = {POINT: {"objective": settings.point_objective, **settings.point_capacity}}
    objectives |= {
        column: {"objective": "quantile", "alpha": level}
        for level, column in zip(settings.quantiles, settings.quantile_columns, strict=True)
    }
    quantile_rows = dataset
    chosen = quantile_sample(weight, settings.seed)
    if chosen.any():
        # The same bins as the point model's rows (`reference`), no weights.
        quantile_rows = lgb.Dataset(
            matrix[chosen], label=label[chosen], reference=dataset, free_raw_data=False, **described
        )
    # Each model is set up here, one after the other, as `lgb.train` would; then they grow
    # side by side (`fit_concurrency`), each on `fit_threads`, the longest first.
    point_rounds = settings.point_estimators or rounds
    growing = {POINT: _Growing.of({**params, **objectives[POINT]}, dataset, point_rounds)}
    forests = [POINT]
    for draw in range(1, settings.point_forests):  # the point's other forests (`point_seeds`)
        forests.append(f"{POINT}#{draw}")
        seeds = forest_seeds(settings.seed, draw)
        growing[forests[-1]] = _Growing.of(
            {**params, **objectives[POINT], **seeds}, dataset, point_rounds
        )
    relative = None
    if settings.level_twin == "on":
        relative = RelativeInputs.of(list(inputs.columns), level_column(settings.rolling_windows))
    if relative is not None:
        scaled, level = relative.scale(matrix)
        rows = level > LEVEL_FLOOR
        if rows.any():
            relative_demand = label[rows] / level[rows].astype("float32")
            cap = np.quantile(relative_demand, RELATIVE_TARGET_QUANTILE)
            twin_rows = lgb.Dataset(
                scaled[rows],
                label=np.minimum(relative_demand, cap),
                weight=weight[rows],
                params={"verbosity": -1, "seed": settings.seed},
                **described,
            )
            growing[TWIN] = _Growing.of(
                {**params, **objectives[POINT]}, twin_rows, growing[POINT].rounds
            )
    quantile_rounds = settings.quantile_estimators or rounds
    for name, objective in objectives.items():
        if name != POINT:
            growing[name] = _Growing.of({**params, **objective}, quantile_rows, quantile_rounds)
    grown = grow_boosters(growing, trees, fit_concurrency(settings))
    if len(forests) > 1:
        grown[POINT] = average_forests([grown.pop(name) for name in forests])
    columns = list(inputs.columns)
    models = {
        name: FittedBooster(booster, columns, categories)
        if name != TWIN
        else FittedBooster(booster, columns, categories, False, relative)
        for name, booster in grown.items()
    }
    # Trained on `fit_threads`, they score on `threads`: a prediction is one parallel pass over
    # the rows, not thousands of steps that wait for each other.
    scoring = _cores(settings.threads)
    forecaster.models_ = {name: model.with_threads(scoring) for name, model in models.items()}


def forest_seeds(seed: int, draw: int) -> dict[str, int]:
    """The seeds of the point's forest number `draw` (1, 2, ...) of `settings.seed`: its own draws
    of inputs and rows. Forest 0 keeps LightGBM's seeds from `seed`, as a single point does."""
    bagging, features = np.random.SeedSequence([seed, draw]).generate_state(2) % (2**31 - 1)
    return {"bagging_seed": int(bagging), "feature_fraction_seed": int(features)}


def average_forests(boosters: list[lgb.Booster]) -> lgb.Booster:
    """One booster whose raw score is the mean of `boosters`' (fitted on the same inputs).

    Every tree of every booster, its leaf values divided by their number: scored, compiled,
    pickled and described (feature importance) like any single booster. For an objective that
    outputs its raw score (`mape`, `l2`, quantiles), its prediction is the mean of theirs.
    """
    if len(boosters) == 1:
        return boosters[0]
    share = 1.0 / len(boosters)
    texts = [booster.model_to_string() for booster in boosters]
    trees = []
    for text in texts:
        first, end = text.index("\nTree="), text.index("\nend of trees")
        for block in text[first:end].split("\nTree=")[1:]:  # "<number>\n<the tree>"
            trees.append(_scaled_tree(block.split("\n", 1)[1].strip("\n"), share))
    first, end = texts[0].index("\nTree="), texts[0].index("\nend of trees")
    # The trees' sizes tell a reader where each tree starts; without them it parses them in turn.
    header = "\n".join(
        line for line in texts[0][:first].split("\n") if not line.startswith("tree_sizes=")
    )
    numbered = "".join(f"\nTree={i}\n{tree}\n\n" for i, tree in enumerate(trees))
    return lgb.Booster(model_str=header + "\n" + numbered + texts[0][end:])


def _scaled_tree(tree: str, share: float) -> str:
    """A tree of LightGBM's model text with its leaf (and internal node) values times `share`."""
    lines = []
    for line in tree.split("\n"):
        key, sep, values = line.partition("=")
        if sep and key in ("leaf_value", "internal_value") and values:
            values = " ".join(repr(float(v) * share) for v in values.split(" "))
            line = f"{key}={values}"
        lines.append(line)
    return "\n".join(lines)


def fit_concurrency(settings: ForecastSettings) -> int:
    """How many models grow at once: as many as the cores hold at `fit_threads` each.

    Each model trains on `fit_threads` (one by default, see `ForecastSettings.fit_threads`), so
    on a machine of `threads` cores the five models of a fit (the point, its twin, three
    quantiles) would otherwise leave every core but one idle. Models grown side by side are the
    same models as grown one after the other: each has its own booster and its own thread.
    """
    return max(1, _cores(settings.threads) // _cores(settings.fit_threads))


@dataclass
class _Growing:
    """A booster set up on its training rows, as `lgb.train` sets it up, before it grows."""

    booster: lgb.Booster
    rounds: int
    rows_handle: int  # the rows LightGBM's booster holds

    @classmethod
    def of(cls, params: dict[str, Any], rows: lgb.Dataset, rounds: int) -> _Growing:
        rows._update_params(params)
        try:
            booster = lgb.Booster(params=params, train_set=rows)
        finally:
            rows._reverse_update_params()
        booster.best_iteration = 0
        return cls(booster, rounds, rows._handle.value)


def grow_boosters(
    growing: dict[str, _Growing], trees: Progress, concurrency: int
) -> dict[str, lgb.Booster]:
    """Grows each booster by its rounds, `concurrency` of them at once, in the order given.

    LightGBM grows a tree without holding Python's lock, so the threads run on cores of their
    own. Every booster is set up before any grows; setting one up on shared rows could rebuild
    them under another's parameters, which is checked here rather than left to chance.
    """

    def grow(name: str) -> None:
        model = growing[name]
        rows = model.booster.train_set
        if rows._handle is None or rows._handle.value != model.rows_handle:
            raise RuntimeError(f"the training rows of model {name!r} were rebuilt while set up")
        _settle_this_thread(model.booster.params)
        for _ in range(model.rounds):
            model.booster.update()
            trees.advance()

    with ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="fit") as pool:
        for future in [pool.submit(grow, name) for name in growing]:
            future.result()
    # As `lgb.train` leaves each: the model alone, without its training rows.
    return {
        name: model.booster.model_from_string(model.booster.model_to_string()).free_dataset()
        for name, model in growing.items()
    }


def _settle_this_thread(params: dict[str, Any]) -> None:
    """Sets LightGBM's log level on the calling thread, keeping its thread count as it is.

    LightGBM keeps its log level per thread, and a new thread starts at "info": the models
    growing on a pool's threads would print to the console whatever their `verbosity`. Only a
    LightGBM call that reads parameters sets it, so this one builds a one-row dataset.
    (Resetting the booster's own parameters would also reset its bagging, and change the model.)
    That call also sets LightGBM's thread count, which is one for the whole process, not per
    thread: it names the boosters' own (`num_threads`), or it would put every growing booster
    on all cores while another is in the middle of a tree, its buffers sized for one thread.
    """
    own = {"verbosity": params.get("verbosity", -1), "num_threads": params.get("num_threads", 0)}
    lgb.Dataset(np.zeros((1, 1)), params=own).construct()


def quantile_sample(weight: np.ndarray, seed: int) -> np.ndarray:
    """Which training rows the quantile models fit on, unweighted (a mask).

    A quantile model re-fits each leaf to a percentile of its rows, and LightGBM's weighted
    percentile sorts every leaf: 100 trees on 333k rows of the 1M benchmark's training sample
    took 13.5 s weighted against 3.5 s unweighted. So each row is drawn with a probability
    proportional to its weight (partially stocked weeks less often, weight-0 rows never) and the
    models fit on the drawn rows without weights: in expectation the same weighted loss. Beyond
    `QUANTILE_MIN_ROWS` rows, a `QUANTILE_ROWS_SHARE` of them: three quantile models on a third
    of the rows each cost about one point model (3.5 s against 10.2 s on the sample above), a
    third describes the spread as well, and the calibration moves each quantile to its coverage
    anyway.
    """
    share = QUANTILE_ROWS_SHARE if len(weight) > QUANTILE_MIN_ROWS else 1.0
    draws = np.random.default_rng(seed).random(len(weight))
    return draws < share * np.clip(weight, 0.0, 1.0)


def compile_for_scoring(
    forecaster: MLForecast, predictions: int, settings: ForecastSettings, report: Report | None
) -> float | None:
    """Compiles the fitted forests when the scoring pass ahead pays for it.

    `predictions`: what each model will predict (SKUs x horizon). `settings.predictor` decides:
    `compiled` always, `lightgbm` never, `auto` from `COMPILE_MIN_PREDICTIONS` on. Returns the
    seconds spent, or None when LightGBM's own predict scores.
    """
    wanted = settings.predictor == "compiled" or (
        settings.predictor == "auto" and predictions >= COMPILE_MIN_PREDICTIONS
    )
    if not wanted:
        return None
    started = time.perf_counter()
    models = list(forecaster.models_.values())
    compile_all([model.text() for model in models], processes=settings.threads or usable_cores())
    for model in models:
        model.compiled = True
        model.compile()  # loaded from this process's cache
    seconds = time.perf_counter() - started
    if report:
        report(
            f"compiled {len(forecaster.models_)} forests to native code in {seconds:.1f} s "
            f"for {predictions:,} predictions each"
        )
    return seconds


def as_matrix(frame: pd.DataFrame, categories: dict[str, pd.Index]) -> np.ndarray:
    """Model inputs as one float32 matrix; categoricals coded as in `categories` (else NaN)."""
    matrix = np.empty((len(frame), frame.shape[1]), dtype="float32")
    for i, column in enumerate(frame.columns):
        values = frame[column]
        if column in categories:
            if not values.cat.categories.equals(categories[column]):
                values = values.cat.set_categories(categories[column])
            codes = values.cat.codes.to_numpy()
            matrix[:, i] = np.where(codes >= 0, codes, np.nan)
        else:
            matrix[:, i] = values.to_numpy(dtype="float32", na_value=np.nan)
    return matrix


@dataclass(frozen=True)
class RelativeInputs:
    """How the level twin sees a row: its target-derived inputs divided by the row's level.

    Attributes:
        level: Position of the level (`level_column`) in the input matrix.
        scaled: Positions of the inputs computed from the target (`TARGET_INPUT_PREFIXES`).
    """

    level: int
    scaled: tuple[int, ...]

    @classmethod
    def of(cls, columns: list[str], level: str) -> RelativeInputs | None:
        """The positions in `columns` (None when the level column is not among them)."""
        if level not in columns:
            return None
        scaled = tuple(i for i, c in enumerate(columns) if c.startswith(TARGET_INPUT_PREFIXES))
        return cls(columns.index(level), scaled)

    def scale(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The matrix with its target inputs divided by the level, and the level (0 for NaN)."""
        level = np.nan_to_num(matrix[:, self.level].astype("float64"), nan=0.0)
        scaled = matrix.copy()
        divisor = np.maximum(level, LEVEL_FLOOR).astype("float32")[:, None]
        scaled[:, self.scaled] = matrix[:, self.scaled] / divisor
        return scaled, level


class FittedBooster:
    """A fitted LightGBM booster with the `predict(frame)` mlforecast calls.

    Attributes:
        booster_: The LightGBM booster (feature importance, parameters).
        columns: The input columns in training order.
        categories: Categories of each categorical input, as coded in training.
        threads: Threads of `predict` (None: those the booster was trained with).
        compiled: Predict through the forest compiled to native code (`core/compiled.py`, the
            same numbers) instead of LightGBM's own `predict`.
        relative: The booster learnt demand relative to the level (`RelativeInputs`): `predict`
            takes the usual inputs and returns demand (NaN where a row has no level).
    """

    def __init__(
        self,
        booster: lgb.Booster,
        columns: list[str],
        categories: dict[str, pd.Index],
        compiled: bool = False,
        relative: RelativeInputs | None = None,
    ):
        self.booster_ = booster
        self.columns = columns
        self.categories = categories
        self.compiled = compiled
        self.relative = relative
        self.threads: int | None = None
        self._text: tuple[str, str] | None = None  # the model's text and its digest, once

    def with_threads(self, threads: int) -> FittedBooster:
        """The same booster, predicting with `threads` threads."""
        model = FittedBooster(
            self.booster_, self.columns, self.categories, self.compiled, self.relative
        )
        model.threads, model._text = threads, self._text
        return model

    def compile(self) -> None:
        """Compiles the forest in this process now rather than at the first `predict`."""
        self._forest()

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return as_matrix(frame[self.columns], self.categories)

    def predict(self, frame: pd.DataFrame | np.ndarray) -> np.ndarray:
        matrix = frame if isinstance(frame, np.ndarray) else self.matrix(frame)
        if self.relative is None:
            return self._predict(matrix)
        scaled, level = self.relative.scale(matrix)
        return np.where(level > LEVEL_FLOOR, self._predict(scaled) * level, np.nan)

    def _predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.compiled:
            trained = self.booster_.params.get("num_threads")
            return self._forest().predict(matrix, self.threads or trained or usable_cores())
        if self.threads:
            return self.booster_.predict(matrix, num_threads=self.threads)
        return self.booster_.predict(matrix)

    def text(self) -> str:
        """The model as LightGBM writes it (`Booster.model_to_string`), derived once."""
        if self._text is None:
            text = self.booster_.model_to_string()
            self._text = (text, model_digest(text))
        return self._text[0]

    def _forest(self) -> CompiledForest:
        self.text()
        assert self._text is not None
        return compiled(*self._text)

    def __getstate__(self) -> dict[str, Any]:
        # The model text is derived again where it is needed; the machine code compiled from it
        # lives in each process's own cache (`core/compiled.py`), never in a pickle.
        return {**self.__dict__, "_text": None}


def score(
    forecaster: MLForecast,
    ids: np.ndarray,
    future: pd.DataFrame | None,
    origin: pd.Timestamp,
    settings: ForecastSettings,
    horizon: int,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Raw scores of `ids` for `horizon` weeks: the point and every quantile along its path.

    `history` (mlforecast's long format) scores series other than those the forecaster was
    fitted on, as a shard of SKUs is scored with models trained on a sample; it holds the rows of
    `ids` and no other series (mlforecast would pick the ids out of it series by series).
    """
    models = forecaster.models_
    along_path = _AlongPointPath(models, settings, ids)
    forecaster.models_ = {POINT: along_path}
    try:
        with young_skus_quietly():
            predictions = forecaster.predict(
                horizon, X_df=future, ids=None if history is not None else list(ids), new_df=history
            )
    finally:
        forecaster.models_ = models
    return predictions.merge(
        along_path.frame(origin), on=["unique_id", "ds"], how="left", validate="one_to_one"
    )


@contextlib.contextmanager
def young_skus_quietly() -> Iterator[None]:
    """mlforecast's warning of NaN inputs is silenced while this block runs.

    Young SKUs have no long lags yet: NaN inputs are expected, and LightGBM handles them.
    Python's warning filters belong to the whole process and `catch_warnings` is not safe
    across threads (a block ending on one thread restores the filters it found, taking away
    those of a block still running on another): a pass that scores shards on threads enters
    this block once, around all of them, as well as in each `score`.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found null values", category=UserWarning)
        yield


def _calibration_offsets(
    features: pd.DataFrame,
    origin: pd.Timestamp,
    active_ids: np.ndarray,
    dynamic: list[str],
    static: list[str],
    settings: ForecastSettings,
    trees: Progress,
    planned: list[str],
) -> pd.DataFrame | None:
    """How far each quantile must move to be calibrated, learned on weeks the model did not see.

    The same models are fitted on the window without its last `calibration_weeks` weeks and
    scored over those weeks, exactly as the real forecast will be: the inputs the forecast takes
    from plans (`planned`) as they were, the others at their usual values. Per horizon and quantile
    level q, the offset is the q-quantile of log1p(actual) - log1p(predicted quantile) over the
    SKUs in stock (split-conformal calibration on a log scale, so slow and fast sellers both
    count).

    Returns:
        Offsets indexed by horizon (1..calibration weeks), one column per quantile; None when the
        window is too short to hold the calibration weeks back.
    """
    weeks = min(settings.calibration_weeks, settings.horizon)
    cut = origin - pd.Timedelta(weeks=weeks)
    # SKUs observed by the cut: a later first sale would leak into the fill of earlier weeks.
    first_observed = features.loc[features["observed"]].groupby("sku", observed=True)["week"].min()
    ids = active_ids[(first_observed.reindex(active_ids) <= cut).to_numpy()]
    past = features.loc[features["week"] <= cut]
    if len(ids) == 0 or past["week"].nunique() < MIN_CALIBRATION_HISTORY_WEEKS:
        return None
    later = features.loc[(features["week"] > cut) & features["sku"].isin(ids)]
    known = past.assign(active=past["sku"].isin(ids))
    future = future_inputs(known, cut.date(), weeks, dynamic).frame
    # Inputs the real forecast takes from plans are known in the held-back weeks too.
    realised = later[["sku", "week", *planned]].rename(columns={"sku": "unique_id", "week": "ds"})
    if planned:
        future = future.drop(columns=planned).merge(realised, on=["unique_id", "ds"], how="left")
        _follow_prices(future, dynamic)
        future = future[["unique_id", "ds", *dynamic]]
    fitted = _fit_and_score(past, cut, ids, future, dynamic, static, settings, trees, weeks)
    truth = later.loc[later["observed"] & (later["availability"] >= 1.0), ["sku", "week", "demand"]]
    scored = fitted.scores.merge(
        truth.rename(columns={"sku": "unique_id", "week": "ds"}), on=["unique_id", "ds"]
    )
    if scored.empty:
        return None
    horizon = (scored["ds"] - cut).dt.days // 7
    demand = scored["demand"].to_numpy(dtype="float64")
    actual = np.log1p(demand)
    offsets = {}
    if settings.calibrate_point and settings.point_objective in RELATIVE_ERROR_OBJECTIVES:
        point = np.clip(scored[POINT].to_numpy(dtype="float64"), 0.0, None)
        offsets[POINT] = pd.Series(point_factor(point, demand))
    for level, column in zip(settings.quantiles, settings.quantile_columns, strict=True):
        predicted = np.log1p(np.clip(scored[column].to_numpy(dtype="float64"), 0.0, None))
        errors = pd.Series(actual - predicted)
        offsets[column] = errors.groupby(horizon.to_numpy()).quantile(level)
    frame = pd.DataFrame({c: offsets[c] for c in settings.quantile_columns})
    frame = frame.reindex(range(1, weeks + 1)).ffill().bfill()
    if POINT in offsets:
        frame.insert(0, POINT, float(offsets[POINT].iloc[0]))
    return frame


def point_factor(point: np.ndarray, actual: np.ndarray) -> float:
    """The factor k that makes held-back relative-error point forecasts best for their loss.

    k minimises the mean of |k f - y| / y over the held-back rows with y > 0: it is the median
    of y / f weighted by f / y. Clipped to `POINT_FACTOR_BOUNDS`, so that one odd stretch of
    weeks cannot scale the forecast by more than that. (A mean point is left as it is: scaled to
    remove its bias on the held-back weeks, VN2's rolling origins got worse, docs/accuracy.md.)
    """
    low, high = POINT_FACTOR_BOUNDS
    usable = (actual > 0) & (point > 0)
    if not usable.any():
        return 1.0
    ratio = actual[usable] / point[usable]
    weight = point[usable] / actual[usable]
    order = np.argsort(ratio)
    cumulative = np.cumsum(weight[order])
    factor = ratio[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    return float(np.clip(factor, low, high))


@dataclass
class FutureInputs:
    """The dynamic inputs over the horizon, and where they came from.

    Attributes:
        frame: `unique_id`, `ds` and one column per dynamic feature, for every active SKU-week.
        planned_share: Per dynamic column, the share of SKU-weeks whose value is a plan (the rest
            take the SKU's usual value); `discount` follows the prices.
    """

    frame: pd.DataFrame
    planned_share: dict[str, float]


def future_inputs(
    features: pd.DataFrame,
    origin: dt.date,
    horizon: int,
    dynamic: list[str],
    plans: pd.DataFrame | None = None,
) -> FutureInputs:
    """Known-future inputs for active SKUs: the plan where there is one, else the usual value.

    Without a plan, a SKU-week takes the SKU's median of its last `USUAL_WEEKS` weeks: its
    regular price and no promotion, not whatever the origin week happened to hold (carrying a
    promotion of the origin week over the whole horizon forecasts twelve weeks of promotion).
    `discount` follows the prices.
    """
    is_active = features["active"].to_numpy()
    week = features["week"]
    latest = week[is_active].max() if is_active.any() else week.max()
    # Only the columns and rows needed (a shard's whole frame would be copied otherwise).
    recent = is_active & (week > latest - pd.Timedelta(weeks=USUAL_WEEKS)).to_numpy()
    last = features.loc[recent, ["sku", *dynamic]].groupby("sku", sort=True)[dynamic].median()
    weeks = pd.date_range(pd.Timestamp(origin) + pd.Timedelta(weeks=1), periods=horizon, freq=FREQ)
    future = last.loc[last.index.repeat(horizon)].reset_index()
    future.insert(1, "ds", np.tile(weeks.to_numpy(), len(last)))
    planned_share = {column: 0.0 for column in dynamic}
    planned = [c for c in dynamic if plans is not None and c in plans.columns and c != "discount"]
    if planned:
        assert plans is not None
        skus = features.loc[is_active, ["sku", *KEY_COLUMNS]].drop_duplicates("sku")
        keyed = plans[[*KEY_COLUMNS, "week", *planned]].astype({k: str for k in KEY_COLUMNS})
        keyed = keyed.merge(skus.astype({k: str for k in KEY_COLUMNS}), on=list(KEY_COLUMNS))
        keyed["ds"] = pd.to_datetime(keyed["week"])
        aligned = future[["sku", "ds"]].merge(
            keyed[["sku", "ds", *planned]], on=["sku", "ds"], how="left", validate="one_to_one"
        )
        for column in planned:
            values = aligned[column].to_numpy(dtype="float32")
            has_plan = ~np.isnan(values)
            future[column] = np.where(has_plan, values, future[column].to_numpy(dtype="float32"))
            planned_share[column] = round(float(has_plan.mean()), 4) if len(values) else 0.0
    regular = _follow_prices(future, dynamic)
    if planned and regular:
        planned_share["discount"] = max(planned_share["price"], planned_share[regular])
    return FutureInputs(future.rename(columns={"sku": "unique_id"}), planned_share)


def _follow_prices(future: pd.DataFrame, dynamic: list[str]) -> str | None:
    """Recomputes `discount` from the (planned) prices in place; returns the regular price used."""
    regular = regular_price_column(dynamic)
    if "discount" not in dynamic or not {"price", regular} <= set(dynamic):
        return None
    future["discount"] = discount(future["price"], future[regular]).astype("float32")
    return regular


class _AlongPointPath:
    """Stands in for the point model while mlforecast predicts recursively.

    At each step mlforecast hands over the point model's features (lags fed with its own
    forecasts); they are turned into a matrix once and every quantile model is evaluated on it,
    so all quantiles describe the same expected path. With a level twin (`TWIN`), the point is
    the mean of the point model and its twin. Rows come in the order of the (sorted)
    `ids` given to `predict`; their index is positional, not the series id.
    """

    def __init__(self, models: dict[str, FittedBooster], settings: ForecastSettings, ids):
        self.point = models[POINT]
        self.twin = models.get(TWIN)
        self.quantiles = {c: models[c] for c in settings.quantile_columns}
        self.inverse = _inverse(settings)  # mlforecast inverts the point forecast itself
        self.ids = ids
        self.steps: list[pd.DataFrame] = []

    def predict(self, step_features: pd.DataFrame) -> np.ndarray:
        if len(step_features) != len(self.ids):
            raise RuntimeError(
                f"expected features for {len(self.ids)} series, got {len(step_features)}"
            )
        matrix = self.point.matrix(step_features)
        scores = {name: model.predict(matrix) for name, model in self.quantiles.items()}
        if self.inverse is not None:
            scores = {name: self.inverse(values) for name, values in scores.items()}
        self.steps.append(pd.DataFrame(scores))
        point = self.point.predict(matrix)
        if self.twin is None:
            return point
        # The path follows the mean of the two point models (the point model alone where the
        # SKU has no level yet); the blend is on the scale the models learnt (`target_transform`).
        twin = self.twin.predict(matrix)
        return np.where(np.isnan(twin), point, (point + twin) / 2)

    def frame(self, origin: pd.Timestamp) -> pd.DataFrame:
        """Quantile scores with `unique_id` and `ds`, one block per horizon step."""
        blocks = [
            step.assign(unique_id=self.ids, ds=origin + pd.Timedelta(weeks=h))
            for h, step in enumerate(self.steps, start=1)
        ]
        return pd.concat(blocks, ignore_index=True)


def _assemble(
    scores: pd.DataFrame,
    features: pd.DataFrame,
    origin: pd.Timestamp,
    settings: ForecastSettings,
    offsets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    columns = [POINT, *settings.quantile_columns]
    values = np.clip(scores[columns].to_numpy(dtype="float64"), 0.0, None)
    horizon = ((scores["ds"] - origin).dt.days // 7).to_numpy()
    if offsets is not None and POINT in offsets.columns:
        values[:, 0] *= float(offsets[POINT].iloc[0])
    if offsets is not None:
        # Horizons past the calibration weeks take the offsets of the last calibrated one.
        steps = np.minimum(horizon, offsets.index.max())
        shift = offsets.loc[steps, settings.quantile_columns].to_numpy(dtype="float64")
        values[:, 1:] = np.clip(np.expm1(np.log1p(values[:, 1:]) + shift), 0.0, None)
    values[:, 1:] = np.sort(values[:, 1:], axis=1)  # quantile models can cross; order them
    # Keys as text once per SKU (not per row), SKUs ranked by their keys: the rows are then put
    # in key and horizon order by integers, and take their text and dates by reference.
    keys = features.drop_duplicates("sku").set_index("sku")[["article_id", "merchant_id"]]
    keys = keys.astype(str).sort_values(["article_id", "merchant_id"])
    position = keys.index.get_indexer(scores["unique_id"].to_numpy())
    if (position < 0).any():
        raise ValueError("scores hold SKUs that the features do not")
    order = np.lexsort((horizon, position))
    weeks = np.array(
        [(origin + pd.Timedelta(weeks=int(h))).date() for h in range(horizon.max(initial=0) + 1)]
    )
    row_sku, row_horizon = position[order], horizon[order]
    out = pd.DataFrame(
        {
            "article_id": keys["article_id"].to_numpy()[row_sku],
            "merchant_id": keys["merchant_id"].to_numpy()[row_sku],
            "week": weeks[row_horizon],
            "horizon": row_horizon.astype("int16"),
        }
    )
    for i, column in enumerate(columns):
        out[column] = values[order, i].astype("float32")
    return out


def _target_transforms(settings: ForecastSettings) -> list | None:
    if settings.target_transform == "log1p":
        return [GlobalSklearnTransformer(FunctionTransformer(np.log1p, np.expm1))]
    return None


def _inverse(settings: ForecastSettings):
    return np.expm1 if settings.target_transform == "log1p" else None


def _cores(threads: int) -> int:
    """Threads to use for a setting where 0 means all cores."""
    return threads or usable_cores()


def _lgbm_params(settings: ForecastSettings) -> dict[str, Any]:
    """LightGBM's parameters for training (`n_jobs`: `fit_threads`)."""
    return {
        "n_estimators": settings.n_estimators,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_child_samples": settings.min_child_samples,
        "colsample_bytree": settings.feature_fraction,
        "subsample": settings.bagging_fraction,
        "subsample_freq": settings.bagging_freq,
        "random_state": settings.seed,
        "n_jobs": _cores(settings.fit_threads),
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        **settings.lgbm_params,
    }
