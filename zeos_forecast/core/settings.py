"""Forecast settings: one typed home for every knob, with the defaults documented next to them."""

from __future__ import annotations

import inspect
import re
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any

__all__ = [
    "AUTO",
    "INTERMITTENT_ZERO_SHARE",
    "LEVEL_TWINS",
    "PREDICTORS",
    "RELATIVE_ERROR_OBJECTIVES",
    "RELATIVE_POINT_CAPACITY",
    "RELATIVE_POINT_TREES",
    "SETTING_CHOICES",
    "TARGET_TRANSFORMS",
    "UNPLANNED_INPUTS",
    "WINDOW_SETTINGS",
    "ForecastSettings",
    "model_settings",
    "quantile_column",
    "setting_descriptions",
]

TARGET_TRANSFORMS = ("auto", "none", "log1p")
PREDICTORS = ("auto", "compiled", "lightgbm")
AUTO = "auto"
# Syntetos-Boylan: a series is intermittent when the mean interval between demands exceeds 1.32
# weeks, i.e. when more than 1 - 1/1.32 = 24 % of its weeks have no demand.
INTERMITTENT_ZERO_SHARE = 1 - 1 / 1.32
# Point objectives whose forecast minimises a relative error (it lies below the typical week).
RELATIVE_ERROR_OBJECTIVES = ("mape",)
# Trees of a relative-error point model: its gradient is bounded (an L1-type loss), so it moves
# towards the data by small steps; 100 trees left Dominick's forecasts far below it
# (docs/accuracy.md).
RELATIVE_POINT_TREES = 400
# Tree capacity of a relative-error point model (and its level twin), as TSPerf's LightGBM entry
# tuned it on Dominick's orange juice: large leaves keep the point from chasing single weeks
# (Dominick's: 45.3 % MAPE with the capacity of the other models, 39.1 % with this). The mean
# and quantile models keep `num_leaves` and the rest: on VN2 the mean point was the same either
# way, and these leaves cost the 1M benchmark ~40 s (docs/accuracy.md, docs/scale.md).
RELATIVE_POINT_CAPACITY = {
    "num_leaves": 124,
    "min_child_samples": 340,
    "colsample_bytree": 0.65,
    "subsample": 0.87,
    "subsample_freq": 19,
}
# LightGBM's names (scikit-learn's and its own) of the parameters that draw inputs or rows per tree.
_FEATURE_SHARE = ("colsample_bytree", "feature_fraction", "sub_feature")
_ROW_SHARE = ("subsample", "bagging_fraction", "sub_row", "bagging")
_ROW_DRAWS = ("subsample_freq", "bagging_freq")
# Settings of the history window (`demand_features`' run config); the other settings, but for
# `lgbm_params` (a free-form dict, set where the instance is configured), are per run as well.
WINDOW_SETTINGS = ("history_weeks", "min_history_weeks", "active_weeks", "returning_weeks")
NOT_PER_RUN = ("lgbm_params",)
# Settings that take one of a few words: the run config, the CLI and the component's YAML say so.
LEVEL_TWINS = ("auto", "on", "off")
UNPLANNED_INPUTS = ("drop", "usual")
SETTING_CHOICES = {
    "target_transform": TARGET_TRANSFORMS,
    "predictor": PREDICTORS,
    "level_twin": LEVEL_TWINS,
    "unplanned_inputs": UNPLANNED_INPUTS,
}


@dataclass(frozen=True)
class ForecastSettings:
    """How the weekly model is trained and scored.

    Attributes:
        horizon: Weeks ahead to forecast (W+1 .. W+horizon).
        history_weeks: Length of the sliding training window ending at the origin week.
        min_history_weeks: The least number of weeks of the window with sales rows (8: two
            months, enough for the short lags and rolling means to mean something). Below it a
            week is not forecast: its run fails saying so, and nothing is published.
        quantiles: Quantile levels to forecast; each becomes a column `q<percent>` (0.1 -> q10).
        active_weeks: A SKU is forecast when it has a sales row in the last `active_weeks` weeks;
            older SKUs still teach the model but get no forecast (they are discontinued).
        returning_weeks: A SKU without a row in the last `active_weeks` weeks is forecast all
            the same when it sold in the `returning_weeks` weeks that follow the origin's week
            one year earlier and has come back before after `active_weeks` weeks or more
            without a row: a seasonal article coming back with its season, which a planner
            would otherwise not order at all. 0: only recent SKUs are forecast.
        lags: Target lags (in weeks) used as features.
        rolling_windows: Windows of rolling means (and a rolling std) of last week's demand.
        target_transform: What the models learn. `none` (what `auto`, the default, takes):
            demand itself. `log1p`: log(1 + demand), one scale for slow and fast sellers.
        point_objective: LightGBM objective of the point forecast. `auto` (default) chooses by
            the window's demand: `mape` (the point that minimises the relative error, which is
            how dense demand is judged; it lies below the mean) when fewer than 24 % of observed
            weeks have no demand (the Syntetos-Boylan bound ADI < 1.32), else `tweedie` (a mean
            for sparse counts, where relative errors are undefined at zero). Chosen by
            backtest: docs/accuracy.md.
        calibration_weeks: Hold back this many latest weeks, fit the models without them and
            shift each quantile so that it covers those weeks as often as its level says
            (split-conformal, per horizon, on a log scale); then fit on the whole window.
            Costs a second fit; 0 turns it off.
        calibrate_point: On the same held-back weeks, scale a relative-error (`mape`) point by
            the one factor that minimises its relative error there (`model.point_factor`); a
            mean point is left as it is. Free once the quantiles calibrate.
        train_rows: Most training rows per model. A window with more observed SKU-weeks than
            this trains on a uniform random sample of them (seeded), which bounds fit time and
            memory at any number of SKUs; at or below it, on every row. Measured in the README
            (benchmark: scale).
        n_estimators: Trees per LightGBM model (the quantile models unless
            `quantile_estimators` says otherwise, and a mean point model).
        point_estimators: Trees of the point model; 0 (default): `n_estimators`, or
            `RELATIVE_POINT_TREES` when the point objective is a relative error.
        quantile_estimators: Trees of each quantile model; 0 (default): `n_estimators`. Only the
            point follows the recursive path, so this changes the quantiles and nothing else;
            each tree costs fit time and scoring time at every step of every SKU. Half the trees
            made the 100k weekly run 13-16 % faster and the pinball loss 0-2.8 % worse on the
            rolling origins (docs/accuracy.md): a setting for a run that must be faster.
        point_seeds: A point model that draws its inputs or rows at random for each tree (the
            relative-error point, with TSPerf's feature and row bagging, or any point given
            `feature_fraction` or bagging) is the average of this many forests, each drawn from
            its own seed: the draws' variance averages out, as in a random forest. A point that
            draws nothing is one forest whatever this says (its forests would be the same).
            Averaged on LightGBM's raw score (for a log-link objective such as `tweedie`, the
            geometric mean). Each forest costs the point's fit and scoring again. 1: one forest.
            Chosen by backtest: docs/accuracy.md.
        level_twin: Fit a twin of the point model on each SKU's demand relative to its level
            (its mean weekly demand over the longest rolling window; lags and their windows
            divided by it, the target too) and forecast the mean of the two. One model for all
            SKUs, judged in units, learns the fast sellers' movements; its twin learns every
            SKU's movements as shares of its own level; averaged, their errors partly cancel.
            `auto` (default): a twin for a mean point (`tweedie`, `l2`, ...), whose loss weighs
            SKUs by their size; none for a relative-error point (`mape`), whose loss already
            judges every SKU relative to its size. `on`/`off` force it. Costs a second point
            model (fit and scoring). Chosen by backtest: docs/accuracy.md.
        unplanned_inputs: What to do with a price or promotion input whose future is not
            planned (plans with a value for fewer than half of the horizon's SKU-weeks). `drop`
            (default): the models leave it out and forecast the average week, promotions that
            will come included. `usual`: keep it, and forecast every unplanned week at the SKU's
            usual value (regular price, no promotion): a forecast of weeks without promotion,
            low by the promotions that come anyway (on generated data: bias −21 % against
            −12 % without them over 13 origins; docs/accuracy.md).
        learning_rate: LightGBM learning rate.
        num_leaves: Leaves per tree.
        min_child_samples: Minimum rows in a leaf.
        feature_fraction: Share of the inputs each tree may split on.
        bagging_fraction: Share of the rows each tree is fitted on, drawn again every
            `bagging_freq` trees (`bagging_freq` 0: every row, always). These five are the
            capacity of the mean and quantile models; a relative-error point model takes
            `RELATIVE_POINT_CAPACITY` (TSPerf's tuned values) instead, except for parameters
            named in `lgbm_params`.
        bagging_freq: Trees between two draws of the rows (0: no bagging).
        seed: Random seed; with the same input and settings the forecast is identical.
        threads: Threads for feature computation and scoring (0 = all cores).
        fit_threads: Threads LightGBM trains each model on (0 = all cores). One by default: on
            several threads every step of a tree waits for the slowest one, and when another
            process (the Dagster daemon, the webserver, another run) holds one of the cores,
            training fell to 5–30 % of its quiet speed; one thread kept 76 % of its own,
            which on an idle machine is 15–70 % slower than two. Measured with
            `zeos-forecast bench contention` (docs/reliability.md). The models of a fit grow
            side by side, as many at once as `threads` cores hold at `fit_threads` each
            (`model.fit_concurrency`), so every core trains and none waits for another.
        lgbm_params: Any further LightGBM parameters, passed through as they are.
        predictor: How the fitted models score. `compiled`: each forest compiled to native code
            once per run (lleaves: the same numbers as LightGBM, several times faster, after
            seconds of compiling per model). `lightgbm`: LightGBM's own `predict`. `auto`
            (default): compiled when the scoring pass makes enough predictions to pay for it
            (`core.compiled.COMPILE_MIN_PREDICTIONS`: about 170k SKUs at 12 weeks).
    """

    horizon: int = 12
    history_weeks: int = 156
    min_history_weeks: int = 8
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    active_weeks: int = 13
    returning_weeks: int = 13
    lags: tuple[int, ...] = (1, 2, 3, 4, 8, 13, 26, 52)
    rolling_windows: tuple[int, ...] = (4, 13)
    target_transform: str = "auto"
    point_objective: str = "auto"
    calibration_weeks: int = 8
    calibrate_point: bool = True
    train_rows: int = 1_000_000
    n_estimators: int = 100
    point_estimators: int = 0
    quantile_estimators: int = 0
    point_seeds: int = 3
    level_twin: str = "auto"
    unplanned_inputs: str = "drop"
    learning_rate: float = 0.1
    num_leaves: int = 63
    min_child_samples: int = 20
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    bagging_freq: int = 0
    seed: int = 0
    threads: int = 0
    fit_threads: int = 1
    lgbm_params: dict[str, Any] = field(default_factory=dict)
    predictor: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if self.horizon < 1:
            problems.append(f"horizon must be >= 1, got {self.horizon}")
        if self.history_weeks < 2:
            problems.append(f"history_weeks must be >= 2, got {self.history_weeks}")
        if self.min_history_weeks < 1:
            problems.append(f"min_history_weeks must be >= 1, got {self.min_history_weeks}")
        if not self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            problems.append(f"quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        if len({quantile_column(q) for q in self.quantiles}) != len(self.quantiles):
            problems.append(f"quantiles must have distinct percent names, got {self.quantiles}")
        if any(lag < 1 for lag in self.lags):
            problems.append(f"lags must be >= 1, got {self.lags}")
        if any(w < 2 for w in self.rolling_windows):
            problems.append(f"rolling_windows must be >= 2, got {self.rolling_windows}")
        if self.target_transform not in TARGET_TRANSFORMS:
            problems.append(
                f"target_transform must be one of {TARGET_TRANSFORMS}, "
                f"got {self.target_transform!r}"
            )
        if self.level_twin not in LEVEL_TWINS:
            problems.append(f"level_twin must be one of {LEVEL_TWINS}, got {self.level_twin!r}")
        if self.unplanned_inputs not in UNPLANNED_INPUTS:
            problems.append(
                f"unplanned_inputs must be one of {UNPLANNED_INPUTS}, got {self.unplanned_inputs!r}"
            )
        if self.predictor not in PREDICTORS:
            problems.append(f"predictor must be one of {PREDICTORS}, got {self.predictor!r}")
        if self.calibration_weeks < 0:
            problems.append(f"calibration_weeks must be >= 0, got {self.calibration_weeks}")
        if not 0 < self.feature_fraction <= 1 or not 0 < self.bagging_fraction <= 1:
            problems.append(
                "feature_fraction and bagging_fraction must lie in (0, 1], got "
                f"{self.feature_fraction} and {self.bagging_fraction}"
            )
        if self.point_estimators < 0 or self.quantile_estimators < 0:
            problems.append(
                "point_estimators and quantile_estimators must be >= 0, got "
                f"{self.point_estimators} and {self.quantile_estimators}"
            )
        if self.point_seeds < 1:
            problems.append(f"point_seeds must be >= 1, got {self.point_seeds}")
        if self.train_rows < 1_000:
            problems.append(f"train_rows must be >= 1000, got {self.train_rows}")
        if self.returning_weeks < 0:
            problems.append(f"returning_weeks must be >= 0, got {self.returning_weeks}")
        if self.active_weeks < 1:
            problems.append(f"active_weeks must be >= 1, got {self.active_weeks}")
        if self.threads < 0 or self.fit_threads < 0:
            problems.append(
                f"threads and fit_threads must be >= 0 (0: all cores), got {self.threads} and "
                f"{self.fit_threads}"
            )
        if problems:
            raise ValueError("Invalid forecast settings: " + "; ".join(problems))
        object.__setattr__(self, "quantiles", tuple(sorted(self.quantiles)))

    @property
    def quantile_columns(self) -> list[str]:
        return [quantile_column(q) for q in self.quantiles]

    def resolved(self, zero_share: float) -> ForecastSettings:
        """These settings with `auto` choices made for data whose observed weeks are
        `zero_share` without demand."""
        transform = "none" if self.target_transform == AUTO else self.target_transform
        objective = self.point_objective
        if objective == AUTO:
            if transform == "log1p":
                objective = "l2"
            elif zero_share >= INTERMITTENT_ZERO_SHARE:
                objective = "tweedie"
            else:
                objective = "mape"
        trees = self.point_estimators or (
            RELATIVE_POINT_TREES if objective in RELATIVE_ERROR_OBJECTIVES else self.n_estimators
        )
        twin = self.level_twin
        if twin == AUTO:
            twin = "off" if objective in RELATIVE_ERROR_OBJECTIVES else "on"
        return replace(
            self,
            target_transform=transform,
            point_objective=objective,
            point_estimators=trees,
            quantile_estimators=self.quantile_trees,
            level_twin=twin,
        )

    @property
    def trees_per_fit(self) -> int:
        """Trees fitted in one fit of the resolved settings (the progress of a fit)."""
        points = self.point_forests + (1 if self.level_twin == "on" else 0)
        return self.point_estimators * points + self.quantile_trees * len(self.quantiles)

    @property
    def point_capacity(self) -> dict[str, Any]:
        """The point model's own LightGBM parameters over the shared ones: TSPerf's capacity for
        a relative-error point (of the resolved settings), except what `lgbm_params` names."""
        if self.point_objective not in RELATIVE_ERROR_OBJECTIVES:
            return {}
        return {k: v for k, v in RELATIVE_POINT_CAPACITY.items() if k not in self.lgbm_params}

    @property
    def point_forests(self) -> int:
        """Forests averaged in the point model (`point_seeds`, or 1 for a point that draws
        nothing at random) of the resolved settings."""
        sources = (self.point_capacity, self.lgbm_params)

        def value(names: tuple[str, ...], default: float) -> float:
            for source in sources:
                for name in names:
                    if name in source:
                        return float(source[name])
            return float(default)

        draws_inputs = value(_FEATURE_SHARE, self.feature_fraction) < 1.0
        draws_rows = value(_ROW_SHARE, self.bagging_fraction) < 1.0 and (
            value(_ROW_DRAWS, self.bagging_freq) > 0
        )
        return self.point_seeds if draws_inputs or draws_rows else 1

    @property
    def quantile_trees(self) -> int:
        """Trees of each quantile model (`quantile_estimators`, 0 resolved)."""
        return self.quantile_estimators or self.n_estimators

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile_column(level: float) -> str:
    """`0.1 -> "q10"`, `0.975 -> "q97.5"`: the quantile's column, named by its percent."""
    percent = round(level * 100, 6)
    return f"q{percent:g}"


@cache
def setting_descriptions() -> dict[str, str]:
    """Each `ForecastSettings` field's description, from the class docstring's `Attributes:`.

    The docstring is the one place a setting is documented: the launchpad's run config, the
    CLI's options and the component's YAML schema all take their text from here.
    """
    section = (inspect.getdoc(ForecastSettings) or "").split("Attributes:\n", 1)[-1]
    descriptions: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        entry = re.match(r"    (\w+): (.*)", line)
        if entry:
            name = entry.group(1)
            descriptions[name] = entry.group(2)
        elif name and line.startswith(" " * 8):
            descriptions[name] += " " + line.strip()
    missing = [f.name for f in fields(ForecastSettings) if f.name not in descriptions]
    if missing:
        raise AssertionError(f"ForecastSettings' docstring does not describe {missing}")
    return descriptions


def model_settings() -> tuple[str, ...]:
    """The settings of `demand_forecast`'s run config (and the CLI's model options)."""
    skipped = (*WINDOW_SETTINGS, *NOT_PER_RUN)
    return tuple(f.name for f in fields(ForecastSettings) if f.name not in skipped)
