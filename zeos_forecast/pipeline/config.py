"""Run configuration shown in the launchpad; the defaults are `ForecastSettings`' own."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..core.settings import ForecastSettings

__all__ = ["ForecastConfig", "WindowConfig"]

DEFAULTS = ForecastSettings()


class WindowConfig(dg.Config):
    """Which history the features of one origin week cover."""

    history_weeks: int = Field(
        DEFAULTS.history_weeks,
        ge=2,
        description="Length of the sliding window ending at the origin week.",
    )
    active_weeks: int = Field(
        DEFAULTS.active_weeks,
        ge=1,
        description="A SKU with a sales row in this many latest weeks is forecast.",
    )
    censored_as_demand: bool = Field(
        False,
        description="Take sales in stockout weeks as demand (for comparison backtests only; "
        "by default stockout weeks are unobserved demand and carry no training weight).",
    )


class ForecastConfig(dg.Config):
    """How the model is trained and scored (see `ForecastSettings` for each field)."""

    horizon: int = Field(DEFAULTS.horizon, description="Weeks ahead to forecast.")
    quantiles: list[float] = Field(list(DEFAULTS.quantiles), description="Quantile levels.")
    lags: list[int] = Field(list(DEFAULTS.lags), description="Target lags in weeks.")
    rolling_windows: list[int] = Field(
        list(DEFAULTS.rolling_windows), description="Rolling-mean windows over last week's demand."
    )
    point_objective: str = Field(
        DEFAULTS.point_objective,
        description="LightGBM objective of the point forecast (`auto`: `mape` for dense demand, "
        "`tweedie` when 24 % or more of the observed weeks have no demand).",
    )
    target_transform: str = Field(
        DEFAULTS.target_transform,
        description="`auto` or `none` (models learn demand itself) or `log1p` (log(1 + demand)).",
    )
    calibration_weeks: int = Field(
        DEFAULTS.calibration_weeks,
        description="Latest weeks held back to calibrate the quantiles (0 = off).",
    )
    calibrate_point: bool = Field(
        DEFAULTS.calibrate_point,
        description="On the held-back weeks, scale a relative-error (`mape`) point forecast by "
        "the factor that minimises its relative error there.",
    )
    train_rows: int = Field(
        DEFAULTS.train_rows,
        description="Most training rows per model; a larger window trains on a uniform sample.",
    )
    n_estimators: int = Field(
        DEFAULTS.n_estimators, description="Trees per quantile model (and of a mean point model)."
    )
    point_estimators: int = Field(
        DEFAULTS.point_estimators,
        description="Trees of the point model; 0: `n_estimators`, or 400 for a `mape` point.",
    )
    level_twin: bool = Field(
        DEFAULTS.level_twin,
        description="Average the point model with a twin fitted on demand relative to each "
        "SKU's level (its mean weekly demand so far).",
    )
    learning_rate: float = Field(DEFAULTS.learning_rate, description="LightGBM learning rate.")
    num_leaves: int = Field(DEFAULTS.num_leaves, description="Leaves per tree.")
    min_child_samples: int = Field(DEFAULTS.min_child_samples, description="Minimum rows per leaf.")
    feature_fraction: float = Field(
        DEFAULTS.feature_fraction, description="Share of the inputs each tree may split on."
    )
    bagging_fraction: float = Field(
        DEFAULTS.bagging_fraction, description="Share of the rows each tree is fitted on."
    )
    bagging_freq: int = Field(
        DEFAULTS.bagging_freq, description="Trees between draws of the rows (0 = no bagging)."
    )
    seed: int = Field(DEFAULTS.seed, description="Random seed (same input + seed = same forecast).")
    threads: int = Field(DEFAULTS.threads, description="Threads; 0 uses every core.")
    predictor: str = Field(
        DEFAULTS.predictor,
        description="`compiled`: score with the forests compiled to native code (the same "
        "numbers, several times faster); `lightgbm`: LightGBM's own predict; `auto`: compiled "
        "when enough SKUs are scored to pay for the compiling.",
    )

    def settings(self) -> ForecastSettings:
        values = self.model_dump()
        values["quantiles"] = tuple(values["quantiles"])
        values["lags"] = tuple(values["lags"])
        values["rolling_windows"] = tuple(values["rolling_windows"])
        return ForecastSettings(**values)
