"""Forecast settings: one typed home for every knob, with the defaults documented next to them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TARGET_TRANSFORMS", "ForecastSettings", "quantile_column"]

TARGET_TRANSFORMS = ("none", "log1p")


@dataclass(frozen=True)
class ForecastSettings:
    """How the weekly model is trained and scored.

    Attributes:
        horizon: Weeks ahead to forecast (W+1 .. W+horizon).
        history_weeks: Length of the sliding training window ending at the origin week.
        quantiles: Quantile levels to forecast; each becomes a column `q<percent>` (0.1 -> q10).
        active_weeks: A SKU is forecast when it has a sales row in the last `active_weeks` weeks;
            older SKUs still teach the model but get no forecast (they are discontinued).
        lags: Target lags (in weeks) used as features.
        rolling_windows: Windows of rolling means (and a rolling std) of last week's demand.
        point_objective: LightGBM objective of the point forecast. With the default log1p
            target, `l2` makes the point forecast the typical week (about the median), which
            minimizes relative errors (MAPE); for a mean forecast whose totals add up (bias
            near 0), use `tweedie` with `target_transform="none"`. Chosen by backtest: README.
        target_transform: `none`, or `log1p`: the models learn log(1 + demand), which evens out
            the scale between slow and fast sellers; forecasts are transformed back.
        calibration_weeks: Hold back this many latest weeks, fit the models without them and
            shift each quantile so that it covers those weeks as often as its level says
            (split-conformal, per horizon, on a log scale); then fit on the whole window.
            Costs a second fit; 0 turns it off.
        n_estimators: Trees per LightGBM model.
        learning_rate: LightGBM learning rate.
        num_leaves: Leaves per tree.
        min_child_samples: Minimum rows in a leaf.
        seed: Random seed; with the same input and settings the forecast is identical.
        threads: Threads for LightGBM and feature computation (0 = all cores).
        lgbm_params: Any further LightGBM parameters, passed through as they are.
    """

    horizon: int = 12
    history_weeks: int = 156
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    active_weeks: int = 13
    lags: tuple[int, ...] = (1, 2, 3, 4, 8, 13, 26, 52)
    rolling_windows: tuple[int, ...] = (4, 13)
    point_objective: str = "l2"
    target_transform: str = "log1p"
    calibration_weeks: int = 8
    n_estimators: int = 100
    learning_rate: float = 0.1
    num_leaves: int = 63
    min_child_samples: int = 20
    seed: int = 0
    threads: int = 0
    lgbm_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.horizon < 1:
            problems.append(f"horizon must be >= 1, got {self.horizon}")
        if self.history_weeks < 2:
            problems.append(f"history_weeks must be >= 2, got {self.history_weeks}")
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
        if self.calibration_weeks < 0:
            problems.append(f"calibration_weeks must be >= 0, got {self.calibration_weeks}")
        if self.active_weeks < 1:
            problems.append(f"active_weeks must be >= 1, got {self.active_weeks}")
        if problems:
            raise ValueError("Invalid forecast settings: " + "; ".join(problems))
        object.__setattr__(self, "quantiles", tuple(sorted(self.quantiles)))

    @property
    def quantile_columns(self) -> list[str]:
        return [quantile_column(q) for q in self.quantiles]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile_column(level: float) -> str:
    """`0.1 -> "q10"`, `0.975 -> "q97.5"`: the quantile's column, named by its percent."""
    percent = round(level * 100, 6)
    return f"q{percent:g}"
