"""Backtests: as-of weekly partitions of the same assets, then their accuracy, summed up exactly.

A backtest is nothing but materializations: for each origin week the features and forecast of
that partition (which read only data up to the origin), then `forecast_accuracy` for every week
those forecasts covered. The summary adds the accuracy components of the backtest's own origins
and horizons, so the numbers are the same ones the UI shows per week.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from ..core.accuracy import (
    HINDSIGHT,
    OURS,
    QUANTILE_BASELINE,
    QUANTILE_METRIC_PREFIXES,
    RECENT_STOCKOUT_WEEKS,
    SUMMARY_METRICS,
    hindsight_level,
    point_components,
    summarize,
)
from ..core.contract import KEY_COLUMNS
from ..core.progress import Progress, Report
from ..core.reference import REFERENCE_MODELS, TSPERF, tsperf_lightgbm
from ..core.services import horizon_plans
from ..core.settings import ForecastSettings
from ..storage import Lake
from .demand_features import ORIGIN_KEY
from .deployment import open_lake
from .forecast_accuracy import FORECAST_ACCURACY
from .launch import RunFailed, forecast_week, materialize_accuracy, validate_history
from .sales_history import SALES_HISTORY

__all__ = ["BacktestResult", "backtest_origins", "run_backtest"]


@dataclass
class BacktestResult:
    """Accuracy of a backtest, per model and horizon and over all its horizons."""

    origins: list[dt.date]
    scored_weeks: list[dt.date]
    by_horizon: pd.DataFrame
    overall: pd.DataFrame
    seconds_per_origin: list[float]
    by_recent_stockout: pd.DataFrame | None = None
    by_origin: pd.DataFrame | None = None

    def spread(self) -> pd.DataFrame:
        """Per model (and horizon): mean, standard deviation, min and max across origins of each
        origin's own metrics, and how often ours beat the model at that origin (MAE% + |bias%|
        and MAPE)."""
        frame = self.by_origin
        if frame is None or frame.empty:
            return pd.DataFrame()
        rows = []
        for (horizon, model), group in frame.groupby(["horizon", "model"], sort=True):
            ours = frame.loc[(frame["model"] == OURS) & (frame["horizon"] == horizon)]
            ours = ours.set_index(ORIGIN_KEY).reindex(group[ORIGIN_KEY])
            row = {"horizon": horizon, "model": model, "origins": len(group)}
            for metric in ("mape", "mae_pct_plus_abs_bias"):
                values = group[metric].to_numpy(dtype="float64")
                row |= {
                    f"{metric}_mean": np.nanmean(values),
                    f"{metric}_sd": np.nanstd(values, ddof=1) if len(values) > 1 else 0.0,
                    f"{metric}_min": np.nanmin(values),
                    f"{metric}_max": np.nanmax(values),
                }
                if model != OURS:
                    row[f"ours_better_{metric}"] = float(
                        np.mean(ours[metric].to_numpy(dtype="float64") < values)
                    )
            rows.append(row)
        return pd.DataFrame(rows)

    def as_text(self) -> str:
        """Point metrics per horizon and overall for every model, then our quantiles."""
        seconds = sum(self.seconds_per_origin)
        with_quantiles = [OURS, QUANTILE_BASELINE]
        ours = self.by_horizon.loc[self.by_horizon["model"].isin(with_quantiles)]
        ours_overall = self.overall.loc[self.overall["model"].isin(with_quantiles)]
        ours_overall = ours_overall.assign(horizon="all")
        quantile_metrics = [
            c for c in self.overall.columns if c.startswith(QUANTILE_METRIC_PREFIXES)
        ]
        return "\n".join(
            [
                f"Backtest: {len(self.origins)} origins {self.origins[0]} .. {self.origins[-1]}, "
                f"{len(self.scored_weeks)} weeks scored; {seconds:.0f} s for the origins' runs "
                f"({seconds / len(self.origins):.1f} s each: features, train and score).",
                "",
                "Point forecasts per horizon (fractions; bias > 0 = over-forecast):",
                _markdown(self.by_horizon, ["horizon", "model", "rows", *SUMMARY_METRICS]),
                "",
                "All horizons:",
                _markdown(self.overall, ["model", "rows", *SUMMARY_METRICS]),
                *self._spread_lines(),
                *self._stockout_lines(),
                "",
                f"Quantiles, ours and the {QUANTILE_BASELINE}'s (the empirical quantiles of its "
                "weeks): coverage = P(actual <= quantile), below = P(actual < quantile), "
                "calibration error = distance of the level from [below, coverage]; "
                "pinball loss / mean actual:",
                _markdown(
                    pd.concat([ours, ours_overall]).sort_values("model", kind="stable"),
                    ["horizon", "model", *quantile_metrics],
                ),
            ]
        )

    def _spread_lines(self) -> list[str]:
        spread = self.spread()
        if spread.empty:
            return []
        spread = spread.assign(horizon=spread["horizon"].astype(str))
        columns = [c for c in spread.columns if c not in ("horizon", "model", "origins")]
        return [
            "",
            f"Across the {len(self.origins)} origins (each origin's own metric; mean, sd, min, "
            "max; ours_better = share of origins where ours is lower):",
            _markdown(spread, ["horizon", "model", "origins", *columns]),
        ]

    def _stockout_lines(self) -> list[str]:
        segments = self.by_recent_stockout
        if segments is None or not segments["recent_stockout"].any():
            return []
        return [
            "",
            "All horizons, by whether the SKU was out of stock in the 13 weeks up to the origin:",
            _markdown(segments, ["recent_stockout", "model", "rows", *SUMMARY_METRICS]),
        ]


def backtest_origins(first: dt.date, last: dt.date, every: int) -> list[dt.date]:
    """Origin weeks `first, first + every, ...` up to `last`."""
    if every < 1:
        raise ValueError(f"--every must be at least 1 week, got {every}.")
    if last < first:
        raise ValueError(f"The backtest ends ({last}) before it starts ({first}).")
    count = (last - first).days // 7 // every + 1
    return [first + dt.timedelta(weeks=i * every) for i in range(count)]


def run_backtest(
    lake_root: str,
    first: dt.date,
    last: dt.date,
    instance: dg.DagsterInstance,
    every: int = 1,
    forecast_config: dict[str, Any] | None = None,
    window_config: dict[str, Any] | None = None,
    horizons: list[int] | None = None,
    report: Report | None = print,
    compute_config: dict[str, Any] | None = None,
    reference: list[str] | None = None,
) -> BacktestResult:
    """Forecasts each origin as of itself, scores every covered week, summarizes the accuracy.

    Args:
        lake_root: The lake (local path or `s3://`), with sales drops covering the backtest.
        first, last: The first and last origin week.
        instance: The Dagster instance that records the runs.
        every: Weeks between origins.
        forecast_config, window_config: Run config of `demand_forecast` / `demand_features`.
        compute_config: Config of the `compute` resource (engine, memory budget).
        horizons: Horizons to summarize (default: all the forecasts have).
        report: Receives progress lines.
        reference: References to score beside ours on the same origins, horizons and validated
            history (`REFERENCE_MODELS`: the published TSPerf LightGBM recipe; the hindsight
            level, each SKU's mean over the scored weeks, the bound of a perfect level).

    Raises:
        RunFailed: when a run fails, or when no covered week has sales to score against.
    """
    forecast_config = dict(forecast_config or {})
    horizon = forecast_config.get("horizon", ForecastSettings().horizon)
    origins = backtest_origins(first, last, every)
    lake = open_lake(lake_root)
    drops = lake.sales_drop_weeks()
    progress = Progress("backtest origins", len(origins), "origins", report)
    seconds = []
    for origin in origins:
        started = time.perf_counter()
        forecast_week(
            origin,
            lake_root,
            instance,
            forecast_config,
            window_config,
            report=None,
            publish=False,
            compute_config=compute_config,
        )
        seconds.append(time.perf_counter() - started)
        progress.advance()
    covered = {o + dt.timedelta(weeks=h) for o in origins for h in range(1, horizon + 1)}
    scored = sorted(w for w in covered if w in drops)
    if not scored:
        raise RunFailed(
            f"No sales drop covers the weeks after the origins {first} .. {last}: nothing to "
            "score. Choose origins whose following weeks have sales."
        )
    # The weeks after the last origin are actuals only: validate their drops, then score them.
    validate_history(lake, lake_root, scored[-1], horizon, instance, report)
    for week in scored:
        if week not in origins:  # an origin's own run has scored it already
            materialize_accuracy(week, lake_root, instance)
    components = lake.read_window(FORECAST_ACCURACY, "week", scored[0], scored[-1])
    # Only this backtest's forecasts: its origins, horizons and covered weeks (a partition may
    # hold rows of an earlier backtest with a longer horizon).
    components = components.loc[
        components[ORIGIN_KEY].isin(origins)
        & components["week"].isin(scored)
        & components["horizon"].isin(horizons or range(1, horizon + 1))
    ]
    for name in reference or []:
        if name not in REFERENCE_MODELS:
            raise ValueError(f"Unknown reference model {name!r}; choose from {REFERENCE_MODELS}.")
        wanted = set(horizons or range(1, horizon + 1))
        parts = [components]
        progress = Progress(f"reference {name}", len(origins), "origins", report)
        for origin in origins:
            parts.append(_reference_components(name, lake, origin, horizon, wanted, window_config))
            progress.advance()
        components = pd.concat(parts, ignore_index=True)
    if components.empty:
        raise RunFailed(
            f"Nothing to score for origins {first} .. {last} and horizons "
            f"{horizons or f'1..{horizon}'}: no forecast row met a fully stocked sales row."
        )
    return BacktestResult(
        origins=origins,
        scored_weeks=scored,
        by_horizon=summarize(components, ["horizon", "model"]),
        overall=summarize(components, ["model"]),
        seconds_per_origin=seconds,
        by_recent_stockout=summarize(components, ["recent_stockout", "model"]),
        by_origin=pd.concat(
            [
                summarize(components, [ORIGIN_KEY, "horizon", "model"]),
                summarize(components, [ORIGIN_KEY, "model"]).assign(horizon="all"),
            ],
            ignore_index=True,
        ).astype({"horizon": str}),
    )


def _reference_components(
    name: str,
    lake: Lake,
    origin: dt.date,
    horizon: int,
    horizons: set[int],
    window_config: dict[str, Any] | None,
) -> pd.DataFrame:
    """A reference's forecast of `origin` (`name`), scored on the fully stocked weeks that
    follow: the TSPerf recipe fitted on the same validated window as ours, or the hindsight level
    of those weeks."""
    weeks = (window_config or {}).get("history_weeks", ForecastSettings().history_weeks)
    if name == HINDSIGHT:  # it needs no window, only the weeks of the recent-stockout segment
        weeks = RECENT_STOCKOUT_WEEKS
    first = origin - dt.timedelta(weeks=weeks - 1)
    last = origin + dt.timedelta(weeks=horizon)
    history = lake.read_window(SALES_HISTORY, "week", first, last, dates_as_datetime=True)
    history = history.astype({k: str for k in KEY_COLUMNS})
    past = history.loc[history["week"] <= pd.Timestamp(origin)]
    actual = history.loc[history["availability"] >= 1.0, [*KEY_COLUMNS, "week", "units_sold"]]
    actual = actual.rename(columns={"units_sold": "actual"})
    ahead = (actual["week"] - pd.Timestamp(origin)).dt.days // 7
    actual = actual.assign(horizon=ahead, **{ORIGIN_KEY: origin})
    actual = actual.loc[actual["horizon"].isin(horizons)]
    if name == HINDSIGHT:
        return point_components(hindsight_level(actual), HINDSIGHT, past)
    plans, _ = horizon_plans(lake, origin, horizon)
    forecast = tsperf_lightgbm(past, origin, horizon, plans)
    rows = forecast.loc[forecast["horizon"].isin(horizons)].merge(
        actual.drop(columns="horizon"), on=[*KEY_COLUMNS, "week"]
    )
    return point_components(rows, TSPERF, past)


def _markdown(frame: pd.DataFrame, columns: list[str]) -> str:
    return frame[columns].to_markdown(index=False, floatfmt=".3f")
