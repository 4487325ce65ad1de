"""Forecast accuracy: every forecast that covered a week, scored against what sold, with baselines.

Scoring is split in two so that any set of weeks can be summarized exactly. `score_week` turns
one week's actuals and the forecasts that covered it into additive *components* (sums and counts
per forecast origin, horizon and model); `summarize` adds components up over any grouping and
only then divides. WAPE over a backtest is therefore total absolute error over total actuals, not
an average of weekly ratios.

Definitions (`actual` = units sold in a fully stocked week; censored weeks are not scored,
because their sales understate demand):
- MAPE: mean of |forecast - actual| / actual over rows with actual > 0 (undefined at zero).
- WAPE: sum |forecast - actual| / sum actual. Bias: sum (forecast - actual) / sum actual
  (positive = over-forecast). `MAE% + |bias%|` = WAPE + |bias|.
- Pinball loss of quantile q: mean of max(q (y - f), (q - 1) (y - f)), divided by the mean
  actual so that weeks and datasets of different volume compare.
- Coverage of quantile level q: the share of actuals at or below the forecast quantile,
  P(y <= f). Sales are counts, often zero, and for a count the true q-quantile f satisfies
  P(y < f) <= q <= P(y <= f), not P(y <= f) = q: when 40 % of weeks sell nothing, the true
  10 % quantile is 0 and P(y <= 0) = 0.4. So next to the coverage the share strictly below,
  P(y < f), is reported, and the calibration error is how far q lies outside
  [P(y < f), P(y <= f)] (0 when inside; for continuous sales both ends meet and it is simply
  |coverage - q|). Interval coverage: the share of actuals inside the outermost quantiles.

Every fully stocked SKU of the week is scored for every origin that covered it: a SKU that an
origin did not forecast (not active then, or new since) counts as a forecast of zero, which is
what a planner orders for it, and so does a baseline without history for the SKU.

Baselines, computed from the same sales history as of each origin (units sold, rows that exist):
- `naive`: the last week's units up to the origin.
- `seasonal_naive`: the units of the week 52 weeks before the target, else `moving_average`.
- `moving_average`: mean units of the 13 weeks up to the origin (weeks without a row are left
  out), else `naive`. Its quantiles are the empirical quantiles of those weeks' units (the
  13-week window of a planner's spreadsheet), so our pinball loss has a baseline too.
- `moving_average_in_stock`: mean units of the fully stocked weeks among the 8 up to the origin,
  else `moving_average` (VN2's published baseline: stockout weeks understate demand).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .contract import KEY_COLUMNS, SEASON_WEEKS

__all__ = [
    "BASELINES",
    "HINDSIGHT",
    "METRIC_NAMES",
    "MOVING_AVERAGE_WEEKS",
    "OURS",
    "QUANTILE_BASELINE",
    "QUANTILE_METRIC_PREFIXES",
    "RECENT_STOCKOUT_WEEKS",
    "SEASON_WEEKS",
    "SUMMARY_METRICS",
    "baseline_forecasts",
    "hindsight_level",
    "metric_label",
    "point_components",
    "score_week",
    "summarize",
]

OURS = "zeos"
BASELINES = ("naive", "seasonal_naive", "moving_average", "moving_average_in_stock")
MOVING_AVERAGE_WEEKS = 13
# Not a forecast: each SKU's mean over the weeks being scored, known in hindsight (a backtest
# `--reference`). What is left of its error is the weeks' movement around their level.
HINDSIGHT = "hindsight_level"
IN_STOCK_AVERAGE_WEEKS = 8
# The baseline whose empirical quantiles stand next to ours.
QUANTILE_BASELINE = "moving_average"
POINT = "forecast"
# Stockouts this recent before the origin make a SKU's history censored: scored as a segment.
RECENT_STOCKOUT_WEEKS = 13
GROUP = ["forecast_week", "horizon", "model", "recent_stockout"]
SUMMARY_METRICS = ["mape", "wape", "bias", "mae_pct_plus_abs_bias"]
# Column prefixes of the quantile metrics in a summary.
QUANTILE_METRIC_PREFIXES = ("coverage_", "below_", "calibration_error_", "interval_", "pinball_")
# What each summary metric is called and means, for people (all are shown in %).
METRIC_NAMES = {
    "wape": ("WAPE", "Σ|forecast − actual| / Σ actual: the error per unit sold (lower is better)."),
    "bias": ("bias", "Σ(forecast − actual) / Σ actual: > 0 over-forecasts, < 0 under-forecasts."),
    "mape": (
        "MAPE",
        "mean of |forecast − actual| / actual over weeks that sold (lower is better).",
    ),
    "mae_pct_plus_abs_bias": ("MAE + |bias|", "WAPE + |bias|: error and bias in one number."),
    "pinball": (
        "pinball loss",
        "quantile loss of {q}, divided by the mean actual (lower is better).",
    ),
    "coverage": ("coverage", "share of actuals at or below {q}: ideally its level."),
    "below": ("below", "share of actuals strictly below {q} (sales are counts: ties at 0)."),
    "calibration_error": (
        "calibration error",
        "how far the level of {q} lies outside [below, coverage]: 0 when calibrated.",
    ),
    "interval_coverage": (
        "interval coverage",
        "share of actuals inside the outermost quantiles (q10–q90: ideally 80 %).",
    ),
}


def metric_label(column: str) -> tuple[str, str]:
    """`("WAPE", what it means)` for `wape`, `("coverage q10", ...)` for `coverage_q10`."""
    if column in METRIC_NAMES:
        return METRIC_NAMES[column]
    base, _, level = column.rpartition("_")
    name, meaning = METRIC_NAMES[base]
    return f"{name} {level}", meaning.format(q=level)


def baseline_forecasts(
    history: pd.DataFrame,
    origin: dt.date,
    targets: pd.DataFrame,
    quantile_columns: list[str] | None = None,
) -> pd.DataFrame:
    """The baselines' forecasts for `targets` (keys and `week`), from `history` up to `origin`.

    Args:
        history: Sales rows (keys, `week`, `units_sold`); rows after `origin` are ignored except
            none are needed: the seasonal week is at or before the origin for horizons <= 52.
        origin: The forecast origin.
        targets: The SKU-weeks to forecast.

    Returns:
        `targets` with one column per baseline and `moving_average_<q>` columns (`q10` ...):
        the empirical quantiles of the moving average's weeks, for `quantile_columns`.
    """
    origin_ts = pd.Timestamp(origin)
    weeks = pd.to_datetime(history["week"])
    past = history.loc[weeks <= origin_ts].assign(week=weeks[weeks <= origin_ts])
    keys = list(KEY_COLUMNS)
    last = past.sort_values("week").groupby(keys, observed=True)["units_sold"].last()
    recent = past.loc[past["week"] > origin_ts - pd.Timedelta(weeks=MOVING_AVERAGE_WEEKS)]
    mean = recent.groupby(keys, observed=True)["units_sold"].mean()
    seasonal = past.set_index([*keys, "week"])["units_sold"]
    stocked = recent
    if "availability" in recent.columns:
        stocked = recent.loc[recent["availability"] >= 1.0]
    stocked = stocked.loc[stocked["week"] > origin_ts - pd.Timedelta(weeks=IN_STOCK_AVERAGE_WEEKS)]
    in_stock = stocked.groupby(keys, observed=True)["units_sold"].mean()

    index = pd.MultiIndex.from_frame(targets[keys])

    def at(values: pd.Series, where: pd.MultiIndex = index) -> pd.Series:
        # As numbers, even where no history at all left an empty (object) series behind.
        return values.reindex(where).astype("float64")

    out = targets.copy()
    out["naive"] = at(last).to_numpy()
    out["moving_average"] = at(mean).fillna(at(last)).to_numpy()
    out["moving_average_in_stock"] = at(in_stock).to_numpy()
    out["moving_average_in_stock"] = out["moving_average_in_stock"].fillna(out["moving_average"])
    units = recent.astype({"units_sold": "float64"}).groupby(keys, observed=True)["units_sold"]
    for column in quantile_columns or []:
        level = float(column[1:]) / 100
        out[f"moving_average_{column}"] = at(units.quantile(level)).fillna(at(last)).to_numpy()
    season_index = pd.MultiIndex.from_arrays(
        [
            targets[keys[0]],
            targets[keys[1]],
            pd.to_datetime(targets["week"]) - pd.Timedelta(weeks=SEASON_WEEKS),
        ]
    )
    out["seasonal_naive"] = at(seasonal, season_index).to_numpy()
    out["seasonal_naive"] = out["seasonal_naive"].fillna(out["moving_average"])
    return out


def hindsight_level(actual: pd.DataFrame) -> pd.DataFrame:
    """Every row's forecast set to its SKU's mean actual over the rows of the same origin.

    Not a forecast: it knows the weeks it is scored on. It answers how good a forecast could be
    that knew each SKU's level over the scored weeks exactly and nothing about how the weeks
    move around it. Its bias is zero at every origin by construction, so its MAE% + |bias%| is
    the WAPE of a perfect level per SKU.

    Args:
        actual: Fully stocked rows of one or more origins' scored weeks: keys, `forecast_week`,
            `actual`.

    Returns:
        `actual` with `forecast`.
    """
    level = actual.groupby([*KEY_COLUMNS, "forecast_week"], observed=True)["actual"]
    return actual.assign(forecast=level.transform("mean").astype("float64"))


def score_week(
    actuals: pd.DataFrame,
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    quantile_columns: list[str],
) -> pd.DataFrame:
    """Additive accuracy components of every forecast of one week, ours and the baselines'.

    Args:
        actuals: `sales_history` rows of the week: keys, `units_sold`, `availability`.
        forecasts: Forecast rows for that week from any number of origins: keys,
            `forecast_week`, `horizon`, `forecast` and the quantile columns.
        history: Sales rows (keys, `week`, `units_sold`, optionally `availability`) before the
            week, reaching back far enough for the baselines of the earliest origin.
        quantile_columns: The forecast's quantile columns (`q10`, ...), lowest first.

    Returns:
        One row per (`forecast_week`, `horizon`, `model`, `recent_stockout`: whether the SKU was
        out of stock in any of the 13 weeks up to the origin) with `rows`, `actual_sum`,
        `abs_error_sum`, `error_sum`, `ape_sum`, `ape_rows` and, for our model, `pinball_<q>_sum`,
        `below_<q>`, `at_or_below_<q>` and `inside_interval`. Empty when nothing can be scored.
    """
    keys = list(KEY_COLUMNS)
    scored = actuals.loc[actuals["availability"] >= 1.0, [*keys, "units_sold"]]
    scored = scored.rename(columns={"units_sold": "actual"}).reset_index(drop=True)
    rows = forecasts.merge(scored.assign(_scored=np.arange(len(scored))), on=keys)
    missing = _not_forecast(forecasts, rows, scored, quantile_columns)
    rows = rows.drop(columns="_scored")
    if missing is not None:
        rows = pd.concat([rows, missing], ignore_index=True)
    if rows.empty:
        return pd.DataFrame(columns=GROUP)
    rows["recent_stockout"] = _recent_stockouts(history, rows)
    parts = [_components(rows.assign(model=OURS), quantile_columns)]
    for origin, group in rows.groupby("forecast_week", sort=True):
        base = baseline_forecasts(history, origin, group[[*keys, "week"]], quantile_columns)
        for name in BASELINES:
            # A SKU without history before the origin has no baseline: a planner reads zero.
            point = group.assign(
                model=name, forecast=base[name].astype("float64").fillna(0.0).to_numpy()
            )
            if name == QUANTILE_BASELINE:  # its empirical quantiles, ours' baseline
                quantiles = {
                    c: base[f"{name}_{c}"].astype("float64").fillna(0.0).to_numpy()
                    for c in quantile_columns
                }
                point = point.assign(**quantiles)
                parts.append(_components(point, quantile_columns))
            else:
                parts.append(_components(point.drop(columns=quantile_columns), []))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(GROUP, ignore_index=True)


def _not_forecast(
    forecasts: pd.DataFrame,
    rows: pd.DataFrame,
    scored: pd.DataFrame,
    quantile_columns: list[str],
) -> pd.DataFrame | None:
    """Zero forecasts for the SKUs that sold but that an origin covering the week left out.

    A SKU without a forecast is a forecast of zero to a planner (nothing is ordered for it), so
    every origin is scored on every fully stocked SKU of the week: one that was not active at
    the origin (or had not sold yet) counts with forecast and quantiles 0. None: none missing.
    """
    missing = []
    positions = rows.groupby("forecast_week", sort=True)["_scored"]
    matched = {origin: group.to_numpy() for origin, group in positions}
    covering = forecasts[["forecast_week", "horizon", "week"]].drop_duplicates("forecast_week")
    for origin, horizon, week in covering.itertuples(index=False):
        seen = np.zeros(len(scored), dtype=bool)
        seen[matched.get(origin, np.empty(0, dtype=int))] = True
        if seen.all():
            continue
        zeros = dict.fromkeys([POINT, *quantile_columns], 0.0)
        missing.append(
            scored.loc[~seen].assign(forecast_week=origin, horizon=horizon, week=week, **zeros)
        )
    if not missing:
        return None
    return pd.concat(missing, ignore_index=True)


def _recent_stockouts(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Per row: was the SKU out of stock in any of the 13 weeks up to the row's origin?"""
    if "availability" not in history.columns:
        return np.zeros(len(rows), dtype=bool)
    keys = list(KEY_COLUMNS)
    out = history.loc[history["availability"] < 1.0, [*keys, "week"]]
    out = out.assign(week=pd.to_datetime(out["week"]))
    pairs = rows[[*keys, "forecast_week"]].drop_duplicates()
    joined = pairs.merge(out, on=keys)
    origin = pd.to_datetime(joined["forecast_week"])
    recent = (joined["week"] <= origin) & (
        joined["week"] > origin - pd.Timedelta(weeks=RECENT_STOCKOUT_WEEKS)
    )
    flagged = joined.loc[recent, [*keys, "forecast_week"]].drop_duplicates().assign(flag=True)
    merged = rows[[*keys, "forecast_week"]].merge(flagged, how="left", on=[*keys, "forecast_week"])
    return merged["flag"].eq(True).to_numpy(dtype=bool)


def point_components(rows: pd.DataFrame, model: str, history: pd.DataFrame) -> pd.DataFrame:
    """Additive components of another model's point forecasts (a reference model's, say).

    Args:
        rows: Keys, `forecast_week`, `horizon`, `forecast` and `actual` (fully stocked weeks).
        model: The model's name in the `model` column.
        history: Sales rows up to the origins (for the recent-stockout segment).
    """
    rows = rows.assign(model=model, recent_stockout=_recent_stockouts(history, rows))
    return _components(rows, [])


def _components(rows: pd.DataFrame, quantile_columns: list[str]) -> pd.DataFrame:
    rows = rows.loc[rows[POINT].notna()]  # a model without a forecast is not scored on the row
    if rows.empty:
        return pd.DataFrame(columns=GROUP)
    actual = rows["actual"].to_numpy(dtype="float64")
    error = rows[POINT].to_numpy(dtype="float64") - actual
    positive = actual > 0
    values = {
        "rows": np.ones(len(rows)),
        "actual_sum": actual,
        "abs_error_sum": np.abs(error),
        "error_sum": error,
        "ape_sum": np.where(positive, np.abs(error) / np.where(positive, actual, 1.0), 0.0),
        "ape_rows": positive.astype("float64"),
    }
    for column in quantile_columns:
        level = float(column[1:]) / 100
        q = rows[column].to_numpy(dtype="float64")
        values[f"pinball_{column}_sum"] = np.maximum(
            level * (actual - q), (level - 1) * (actual - q)
        )
        values[f"below_{column}"] = (actual < q).astype("float64")
        values[f"at_or_below_{column}"] = (actual <= q).astype("float64")
    if quantile_columns:
        low = rows[quantile_columns[0]].to_numpy(dtype="float64")
        high = rows[quantile_columns[-1]].to_numpy(dtype="float64")
        values["inside_interval"] = ((actual >= low) & (actual <= high)).astype("float64")
    frame = pd.DataFrame(values).assign(**{c: rows[c].to_numpy() for c in GROUP})
    return frame.groupby(GROUP, sort=True).sum().reset_index()


def summarize(components: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Metrics from accuracy components added up over `by` (e.g. `["model", "horizon"]`).

    Returns:
        One row per group: `rows`, `mape`, `wape`, `bias`, `mae_pct_plus_abs_bias` and, where
        the components have them, `pinball_<q>`, `coverage_<q>` (P(y <= q)), `below_<q>`
        (P(y < q)), `calibration_error_<q>` and `interval_coverage`.
        Ratios are fractions (0.25 = 25 %).
    """
    if components.empty or "rows" not in components.columns:
        return pd.DataFrame(columns=[*by, "rows", *SUMMARY_METRICS])
    sums = components.groupby(by, sort=True).sum(numeric_only=True, min_count=1)
    out = pd.DataFrame(index=sums.index)
    out["rows"] = sums["rows"].astype("int64")
    actual = sums["actual_sum"].where(sums["actual_sum"] > 0)
    out["mape"] = sums["ape_sum"] / sums["ape_rows"].where(sums["ape_rows"] > 0)
    out["wape"] = sums["abs_error_sum"] / actual
    out["bias"] = sums["error_sum"] / actual
    out["mae_pct_plus_abs_bias"] = out["wape"] + out["bias"].abs()
    for column in [c for c in sums.columns if c.startswith("pinball_")]:
        name = column.removesuffix("_sum")
        out[name] = sums[column] / actual
    for column in [c for c in sums.columns if c.startswith("below_")]:
        name = column.removeprefix("below_")
        level = float(name[1:]) / 100
        below = sums[column] / sums["rows"]
        at_or_below = sums[f"at_or_below_{name}"] / sums["rows"]
        out[f"coverage_{name}"] = at_or_below
        out[f"below_{name}"] = below
        out[f"calibration_error_{name}"] = np.maximum(
            0.0, np.maximum(below - level, level - at_or_below)
        )
    if "inside_interval" in sums.columns:
        out["interval_coverage"] = sums["inside_interval"] / sums["rows"]
    return out.reset_index()
