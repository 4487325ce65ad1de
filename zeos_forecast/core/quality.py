"""Data-quality rules for the weekly sales history and the forecast, as pure functions on frames.

Each rule returns a `QualityResult` (passed, severity, a sentence, numbers and a few sample rows);
`pipeline/checks.py` runs them as Dagster asset checks. Thresholds are arguments whose defaults
are the named constants below.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .contract import KEY_COLUMNS

__all__ = [
    "DRIFT_WEEKS",
    "FORECAST_RULES",
    "MAX_NAIVE_RATIO",
    "MAX_VOLUME_CHANGE",
    "MIN_NAIVE_RATIO",
    "MIN_SKU_SHARE",
    "NAIVE_WEEKS",
    "SAMPLE_ROWS",
    "NaiveBand",
    "QualityResult",
    "Severity",
    "SortedSkus",
    "cannot_evaluate",
    "forecast_covers_active_skus",
    "forecast_quantiles_ordered",
    "forecast_rules",
    "forecast_values_valid",
    "forecast_within_naive_band",
    "naive_level",
    "quantile_columns",
    "sales_schema",
    "sales_skus_retained",
    "sales_unique_skus",
    "sales_values_valid",
    "sales_volume_stable",
    "sales_weeks_present",
    "sorted_skus",
]

# A week's total units may differ from the mean of the DRIFT_WEEKS weeks before it by this share
# (±50 %) before it is worth a warning: promotions and holidays move totals, errors move them more.
DRIFT_WEEKS = 4
MAX_VOLUME_CHANGE = 0.5
# Share of last week's SKUs expected to sell (have a row) again this week.
MIN_SKU_SHARE = 0.8
# The naive forecast: the mean total weekly demand of active SKUs over the last NAIVE_WEEKS weeks
# of the window. Each horizon's total forecast must lie within [MIN, MAX] × that level.
NAIVE_WEEKS = 4
MIN_NAIVE_RATIO = 0.2
MAX_NAIVE_RATIO = 5.0
# Offending rows shown with a failed rule.
SAMPLE_ROWS = 5
# The forecast rules, by their check names (`forecast_rules`).
COVERS, VALUES_VALID = "covers_active_skus", "values_valid"
QUANTILES_ORDERED, WITHIN_NAIVE_BAND = "quantiles_ordered", "within_naive_band"
FORECAST_RULES = (COVERS, VALUES_VALID, QUANTILES_ORDERED, WITHIN_NAIVE_BAND)

# The columns of a `sales_history` partition, by kind; any further column is a numeric feature.
SALES_TEXT_COLUMNS = KEY_COLUMNS
SALES_FLOAT_COLUMNS = ("units_sold", "price", "list_price", "availability", "demand")
SALES_BOOL_COLUMNS = ("censored",)
# Joins a SKU's two keys into one for the sorted-key path of the SKU rules (`sorted_skus`).
KEY_SEPARATOR_BYTE = 0x1F
# That path pads every key to the longest: it is taken while the padded keys take at most this
# many times the bytes of the keys themselves (one malformed 10 kB key among millions would
# otherwise ask for gigabytes), and pads unequal keys this many at a time.
MAX_PADDING = 4
PADDING_BLOCK = 1 << 20
_QUANTILE = re.compile(r"^q(\d+(?:\.\d+)?)$")


class Severity(StrEnum):
    """How bad a failed rule is: ERROR stops publishing (when blocking), WARN asks for a look."""

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True, eq=False)
class QualityResult:
    """The outcome of one rule on one partition.

    Attributes:
        passed: Whether the data satisfies the rule.
        severity: How bad a failure is.
        description: One sentence a person can act on.
        metadata: Counts, ratios and thresholds (numbers or short strings).
        sample: A few offending rows (or the numbers behind the verdict); empty if none.
    """

    passed: bool
    severity: Severity
    description: str
    metadata: dict[str, int | float | str] = field(default_factory=dict)
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)


# ---- sales_history: one week's partition ----


def sales_schema(frame: pd.DataFrame) -> QualityResult:
    """Required columns with their types: text keys, float measures, a bool `censored` flag.

    Any other column must be numeric (a dynamic feature such as a promotion flag).
    """
    problems = []
    expected = {
        **dict.fromkeys(SALES_TEXT_COLUMNS, "text"),
        **dict.fromkeys(SALES_FLOAT_COLUMNS, "float"),
        **dict.fromkeys(SALES_BOOL_COLUMNS, "bool"),
    }
    for column, kind in expected.items():
        if column not in frame.columns:
            problems.append((column, kind, "missing"))
        elif not _is_kind(frame[column], kind):
            problems.append((column, kind, str(frame[column].dtype)))
    for column in frame.columns.difference(list(expected)):
        if not _is_kind(frame[column], "number"):
            problems.append((column, "number (extra feature)", str(frame[column].dtype)))
    sample = pd.DataFrame(problems, columns=["column", "expected", "found"])
    return QualityResult(
        passed=not problems,
        severity=Severity.ERROR,
        description=(
            f"All {len(expected)} required columns have their types."
            if not problems
            else f"{len(problems)} columns are missing or have the wrong type: "
            + ", ".join(sample["column"])
        ),
        metadata={"columns": frame.shape[1], "rows": len(frame), "bad_columns": len(problems)},
        sample=sample,
    )


def sales_unique_skus(frame: pd.DataFrame, skus: SortedSkus | None = None) -> QualityResult:
    """Each SKU `(article_id, merchant_id)` appears once in the week.

    `skus`: `sorted_skus(frame)`, when the caller has it already (None: made here).
    """
    if (skus or sorted_skus(frame)).keys is not None:  # strictly increasing: each appears once
        duplicated, skus = np.zeros(len(frame), dtype=bool), len(frame)
    else:
        (ids,), skus = _sku_ids(frame)
        duplicated = np.bincount(ids, minlength=skus)[ids] > 1
    count = int(duplicated.sum())
    return QualityResult(
        passed=count == 0,
        severity=Severity.ERROR,
        description=(
            f"All {len(frame):,} SKUs appear once."
            if count == 0
            else f"{count:,} rows share a SKU key with another row of the week."
        ),
        metadata={
            "rows": len(frame),
            "skus": skus,
            "duplicate_rows": count,
        },
        sample=frame.loc[duplicated].sort_values(list(KEY_COLUMNS)).head(SAMPLE_ROWS),
    )


def sales_values_valid(frame: pd.DataFrame) -> QualityResult:
    """Units and demand are finite and >= 0, prices finite and > 0, availability within 0..1.

    `price` and `list_price` may be empty (not delivered), and so may `demand` (unknown below half
    a week in stock); `units_sold` and `availability` may not.
    """
    rules = {
        "units_sold": (lambda v: np.isfinite(v) & (v >= 0), False),
        "price": (lambda v: np.isfinite(v) & (v > 0), True),
        "list_price": (lambda v: np.isfinite(v) & (v > 0), True),
        "availability": (lambda v: (v >= 0) & (v <= 1), False),
        "demand": (lambda v: np.isfinite(v) & (v >= 0), True),
    }
    bad = pd.Series(False, index=frame.index)
    counts: dict[str, int | float | str] = {}
    for column, (valid, may_be_empty) in rules.items():
        if column not in frame.columns:
            continue  # `sales_schema` reports missing columns
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        wrong = ~valid(values) & ~(values.isna() & may_be_empty)
        counts[f"bad_{column}"] = int(wrong.sum())
        bad |= wrong
    count = int(bad.sum())
    checked = [c for c in (*KEY_COLUMNS, *rules) if c in frame.columns]
    return QualityResult(
        passed=count == 0,
        severity=Severity.ERROR,
        description=(
            f"All {len(frame):,} rows have valid units, prices, availability and demand."
            if count == 0
            else f"{count:,} of {len(frame):,} rows have negative, non-finite or "
            "out-of-range values."
        ),
        metadata={"rows": len(frame), "bad_rows": count, **counts},
        sample=frame.loc[bad, checked].head(SAMPLE_ROWS),
    )


# ---- sales_history: the week against the weeks before it ----


def sales_weeks_present(
    weeks: Iterable[dt.date], week: dt.date, history_weeks: int
) -> QualityResult:
    """No week is missing between the start of the history and `week`, within the window.

    The window is the `history_weeks` weeks ending at `week`. Weeks before the first week that has
    data are where the history starts (a young retailer), not gaps, and are only counted.

    Args:
        weeks: The weeks that have a partition (any range; others are ignored).
        week: The last week of the window.
        history_weeks: The window length.
    """
    first = week - dt.timedelta(weeks=history_weeks - 1)
    present = sorted({w for w in weeks if first <= w <= week})
    start = present[0] if present else week
    expected = [start + dt.timedelta(weeks=i) for i in range((week - start).days // 7 + 1)]
    missing = sorted(set(expected) - set(present))
    listed = ", ".join(w.isoformat() for w in missing[:10]) + (" …" if len(missing) > 10 else "")
    return QualityResult(
        passed=not missing,
        severity=Severity.WARN,
        description=(
            f"All {len(expected)} weeks from {start} to {week} have sales history."
            if not missing
            else f"{len(missing)} weeks between {start} and {week} have no sales history: " + listed
        ),
        metadata={
            "window_first_week": first.isoformat(),
            "history_first_week": start.isoformat(),
            "weeks_present": len(present),
            "weeks_missing": len(missing),
            "weeks_before_history": (start - first).days // 7,
        },
        sample=pd.DataFrame({"missing_week": [w.isoformat() for w in missing]}).head(SAMPLE_ROWS),
    )


def sales_volume_stable(
    units: float,
    previous_units: Mapping[dt.date, float],
    max_change: float = MAX_VOLUME_CHANGE,
) -> QualityResult:
    """The week's total units lie within ±`max_change` of the mean of the previous weeks' totals.

    Args:
        units: Total `units_sold` of the week.
        previous_units: Total `units_sold` of each previous week to compare with (those present).
        max_change: Allowed relative change (0.5 = ±50 %).
    """
    if not previous_units:
        return QualityResult(
            passed=True,
            severity=Severity.WARN,
            description="No previous week to compare the volume with.",
            metadata={"units": float(units), "previous_weeks": 0},
        )
    mean = float(np.mean(list(previous_units.values())))
    ratio = _ratio(units, mean)
    passed = abs(ratio - 1) <= max_change
    sample = pd.DataFrame(
        {
            "week": [w.isoformat() for w in sorted(previous_units)] + ["this week"],
            "units": [previous_units[w] for w in sorted(previous_units)] + [units],
        }
    )
    return QualityResult(
        passed=passed,
        severity=Severity.WARN,
        description=(
            f"{units:,.0f} units against a {len(previous_units)}-week mean of {mean:,.0f}: "
            f"ratio {_number(ratio)}, {'within' if passed else 'outside'} 1 ± {max_change:g}."
        ),
        metadata={
            "units": float(units),
            "previous_mean": round(mean, 3),
            "ratio": _number(ratio),
            "previous_weeks": len(previous_units),
            "max_change": max_change,
        },
        sample=sample,
    )


def sales_skus_retained(
    frame: pd.DataFrame,
    previous: pd.DataFrame | None,
    min_share: float = MIN_SKU_SHARE,
    skus: SortedSkus | None = None,
    previous_skus: SortedSkus | None = None,
) -> QualityResult:
    """At least `min_share` of the previous week's SKUs have a row again this week.

    Args:
        frame: This week's rows (the SKU key columns are enough).
        previous: The previous week's rows, or None when that week has no data.
        min_share: Smallest acceptable share (0.8 = 80 %).
        skus, previous_skus: `sorted_skus` of `frame` and of `previous`, when the caller has
            them already (None: made here).
    """
    if previous is None or previous.empty:
        return QualityResult(
            passed=True,
            severity=Severity.WARN,
            description="No previous week to compare the SKUs with.",
            metadata={"skus_this_week": len(frame)},
        )
    before_keys = (previous_skus or sorted_skus(previous)).keys
    now_keys = (skus or sorted_skus(frame)).keys
    if before_keys is not None and now_keys is not None:
        # Both weeks as the lake holds them, sorted by SKU: a binary search instead of hashing.
        retained = _found_in(now_keys, before_keys)
        before, now = len(before_keys), len(now_keys)
        new = now - int(retained.sum())  # both weeks' keys are distinct
        first_rows = np.arange(before)
    else:
        (last_week, this_week), skus = _sku_ids(previous, frame)
        in_before = np.zeros(skus, dtype=bool)
        in_before[last_week] = True
        in_now = np.zeros(skus, dtype=bool)
        in_now[this_week] = True
        # Last week's SKUs are numbered 0, 1, ... in the order they appear: its first rows.
        before, now = int(in_before.sum()), int(in_now.sum())
        new = int((in_now & ~in_before).sum())
        first_rows = np.flatnonzero(last_week > np.maximum.accumulate(np.r_[-1, last_week[:-1]]))
        retained = in_now[:before]
    share = float(retained.mean())
    passed = share >= min_share
    dropped_rows = first_rows[~retained][:SAMPLE_ROWS]
    dropped = previous.iloc[dropped_rows][list(KEY_COLUMNS)].astype(str)
    return QualityResult(
        passed=passed,
        severity=Severity.WARN,
        description=(
            f"{share:.0%} of last week's {before:,} SKUs are present "
            f"({'at least' if passed else 'below'} {min_share:.0%})."
        ),
        metadata={
            "skus_previous_week": before,
            "skus_this_week": now,
            "skus_retained": int(retained.sum()),
            "skus_dropped": int((~retained).sum()),
            "skus_new": new,
            "share": round(share, 4),
            "min_share": min_share,
        },
        sample=dropped.reset_index(drop=True),
    )


# ---- demand_forecast ----


def quantile_columns(frame: pd.DataFrame) -> list[str]:
    """The `q<percent>` columns of a forecast table, from the lowest quantile to the highest."""
    found = [(float(m.group(1)), c) for c in frame.columns if (m := _QUANTILE.match(str(c)))]
    return [column for _, column in sorted(found)]


def forecast_covers_active_skus(
    forecast: pd.DataFrame, features: pd.DataFrame, horizon: int
) -> QualityResult:
    """Every active SKU has exactly `horizon` rows, horizons 1..`horizon`; no other SKU has any.

    Args:
        forecast: The forecast table of one origin week.
        features: That week's feature frame; `active` marks the SKUs that must be forecast.
        horizon: H, the number of weeks forecast.
    """
    return forecast_rules([(forecast, features)], horizon, selected={COVERS})[COVERS]


def forecast_values_valid(forecast: pd.DataFrame) -> QualityResult:
    """No empty cell anywhere; the point forecast and every quantile are finite and >= 0."""
    return forecast_rules([(forecast, None)], 0, selected={VALUES_VALID})[VALUES_VALID]


def forecast_quantiles_ordered(forecast: pd.DataFrame) -> QualityResult:
    """Per row, each quantile is <= the next higher one (q10 <= q50 <= q90, whatever exists)."""
    return forecast_rules([(forecast, None)], 0, selected={QUANTILES_ORDERED})[QUANTILES_ORDERED]


def naive_level(features: pd.DataFrame, weeks: int = NAIVE_WEEKS) -> float:
    """Mean total weekly demand of the active SKUs over the last `weeks` weeks of the window.

    Demand is the feature frame's: sales scaled up in partly stocked weeks and filled from the
    SKU's recent level in stockouts, so a stockout does not pull the level down.
    """
    return _level(_weekly_active_demand(features), weeks)


def forecast_within_naive_band(
    forecast: pd.DataFrame,
    features: pd.DataFrame,
    naive_weeks: int = NAIVE_WEEKS,
    min_ratio: float = MIN_NAIVE_RATIO,
    max_ratio: float = MAX_NAIVE_RATIO,
) -> QualityResult:
    """Each horizon's total point forecast lies within [`min_ratio`, `max_ratio`] × the naive level.

    The naive level (see `naive_level`) is what "next week looks like the last few" predicts; a
    forecast total far outside it points at a broken input or model, not at a real shift.
    """
    band = NaiveBand(naive_weeks, min_ratio, max_ratio)
    return forecast_rules([(forecast, features)], 0, selected={WITHIN_NAIVE_BAND}, band=band)[
        WITHIN_NAIVE_BAND
    ]


def forecast_rules(
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame | None]],
    horizon: int,
    selected: Iterable[str] = FORECAST_RULES,
    band: NaiveBand | None = None,
) -> dict[str, QualityResult]:
    """The forecast rules (`FORECAST_RULES`) over a forecast read in chunks of SKUs.

    Each chunk is (forecast rows, feature rows) of its own SKUs, no SKU in two chunks, and the
    chunks in key order (as key ranges read them), so that the forecast of millions of SKUs is
    never in memory at once. The results are those of the whole frames: counts add up, the
    samples are the first rows in key order, the naive level and the totals are sums over chunks.
    `band`: the naive band's weeks and ratios (default: the constants above). Features may be
    None for the rules that do not read them.
    """
    selected = set(selected)
    tallies: dict[str, _Tally] = {
        COVERS: _Covers(horizon),
        VALUES_VALID: _ValuesValid(),
        QUANTILES_ORDERED: _QuantilesOrdered(),
        WITHIN_NAIVE_BAND: band or NaiveBand(NAIVE_WEEKS, MIN_NAIVE_RATIO, MAX_NAIVE_RATIO),
    }
    tallies = {name: tally for name, tally in tallies.items() if name in selected}
    missing: dict[str, KeyError] = {}  # a rule that lacks a column fails alone
    for forecast, features in chunks:
        for name, tally in tallies.items():
            if name in missing:
                continue
            try:
                tally.add(forecast, features)
            except KeyError as error:
                missing[name] = error
    return {
        name: cannot_evaluate(missing[name]) if name in missing else tally.result()
        for name, tally in tallies.items()
    }


def cannot_evaluate(error: KeyError) -> QualityResult:
    """A rule that could not run: a column it reads is missing (the schema rule says more)."""
    return QualityResult(
        passed=False,
        severity=Severity.ERROR,
        description=f"Cannot evaluate: column {error} is missing (see the schema).",
    )


class _Tally:
    """One forecast rule, added up chunk by chunk (`forecast_rules`); a missing column raises
    `KeyError` from `add`."""

    def add(self, forecast: pd.DataFrame, features: pd.DataFrame | None) -> None:
        raise NotImplementedError

    def result(self) -> QualityResult:
        raise NotImplementedError


class _Covers(_Tally):
    PROBLEMS = ("missing", "incomplete", "extra")

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.count = dict.fromkeys(("active", "forecast", *self.PROBLEMS, "rows"), 0)
        self.samples: dict[str, list[pd.DataFrame]] = {p: [] for p in self.PROBLEMS}

    def add(self, forecast: pd.DataFrame, features: pd.DataFrame | None) -> None:
        horizon = self.horizon
        # SKUs numbered by hashing their keys: the forecast of millions of SKUs x H weeks is
        # never turned into Python strings, MultiIndexes or a multi-key groupby.
        active_rows = features.loc[features["active"].astype(bool), list(KEY_COLUMNS)]
        (rows_sku, active_sku), skus = _sku_ids(forecast, active_rows)
        steps = pd.to_numeric(forecast["horizon"], errors="coerce").to_numpy(dtype="float64")
        valid = (steps >= 1) & (steps <= horizon) & (steps == np.floor(steps))
        # Per SKU: its rows, its rows without a valid horizon, and how many of 1..H it holds.
        size = np.bincount(rows_sku, minlength=skus)
        invalid = np.bincount(rows_sku[~valid], minlength=skus)
        pairs = rows_sku[valid] * horizon + (steps[valid].astype("int64") - 1)
        distinct = (np.bincount(pairs, minlength=skus * horizon).reshape(skus, horizon) > 0).sum(1)
        in_forecast = size > 0
        is_active = np.bincount(active_sku, minlength=skus) > 0
        complete = (size == horizon) & (invalid == 0) & (distinct == horizon)
        flags = {
            "missing": is_active & ~in_forecast,
            "incomplete": is_active & in_forecast & ~complete,
            "extra": in_forecast & ~is_active,
        }
        frames = {"missing": (active_rows, active_sku)}
        texts = {
            "missing": "active SKU without forecast rows",
            "incomplete": f"not exactly horizons 1..{horizon}",
            "extra": "forecast for a SKU that is not active",
        }
        for problem, flagged in flags.items():
            self.count[problem] += int(flagged.sum())
            if flagged.any():
                frame, sku = frames.get(problem, (forecast, rows_sku))
                self.samples[problem].append(_problem_skus(frame, sku, flagged, texts[problem]))
        self.count["active"] += int(is_active.sum())
        self.count["forecast"] += int(in_forecast.sum())
        self.count["rows"] += len(forecast)

    def result(self) -> QualityResult:
        count, horizon = self.count, self.horizon
        # The first SAMPLE_ROWS of each problem in key order (each chunk keeps its first ones),
        # then the first SAMPLE_ROWS of all, problem by problem.
        problems = [
            pd.concat(frames, ignore_index=True).head(SAMPLE_ROWS)
            for frames in self.samples.values()
            if frames
        ]
        sample = pd.concat(problems, ignore_index=True).head(SAMPLE_ROWS) if problems else None
        passed = sample is None
        return QualityResult(
            passed=passed,
            severity=Severity.ERROR,
            description=(
                f"All {count['active']:,} active SKUs have exactly {horizon} rows "
                f"(horizons 1..{horizon})."
                if passed
                else f"{count['missing']:,} active SKUs have no forecast, {count['incomplete']:,} "
                f"do not have exactly horizons 1..{horizon}, {count['extra']:,} forecast SKUs "
                "are not active."
            ),
            metadata={
                "active_skus": count["active"],
                "forecast_skus": count["forecast"],
                "horizon": horizon,
                "rows": count["rows"],
                "expected_rows": count["active"] * horizon,
                "missing_skus": count["missing"],
                "incomplete_skus": count["incomplete"],
                "extra_skus": count["extra"],
            },
            sample=pd.DataFrame() if sample is None else sample,
        )


class _ValuesValid(_Tally):
    def __init__(self) -> None:
        self.rows = self.bad = self.empty = self.negative = self.infinite = 0
        self.values: list[str] = []
        self.samples: list[pd.DataFrame] = []

    def add(self, forecast: pd.DataFrame, features: pd.DataFrame | None) -> None:
        self.values = ["forecast", *quantile_columns(forecast)]
        # Column by column in numpy: no float64 copy of the whole table, no frame of flags.
        bad = np.zeros(len(forecast), dtype=bool)
        for column in forecast.columns:
            empty = forecast[column].isna().to_numpy()
            bad |= empty
            self.empty += int(empty.sum())
            if column in self.values:
                numbers = pd.to_numeric(forecast[column], errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan
                )
                negative, infinite = numbers < 0, np.isinf(numbers)
                bad |= negative | infinite
                self.negative += int(negative.sum())
                self.infinite += int(infinite.sum())
        self.rows += len(forecast)
        self.bad += int(bad.sum())
        if bad.any() and sum(map(len, self.samples)) < SAMPLE_ROWS:
            self.samples.append(forecast.loc[bad].head(SAMPLE_ROWS))

    def result(self) -> QualityResult:
        count, rows = self.bad, self.rows
        return QualityResult(
            passed=count == 0,
            severity=Severity.ERROR,
            description=(
                f"All {rows:,} rows are complete, finite and non-negative."
                if count == 0
                else f"{count:,} of {rows:,} rows have empty, infinite or negative values."
            ),
            metadata={
                "rows": rows,
                "bad_rows": count,
                "empty_cells": self.empty,
                "negative_values": self.negative,
                "infinite_values": self.infinite,
                "value_columns": ", ".join(self.values or ["forecast"]),
            },
            sample=_first_rows(self.samples),
        )


class _QuantilesOrdered(_Tally):
    def __init__(self) -> None:
        self.rows = self.crossing = 0
        self.largest = 0.0
        self.columns: list[str] = []
        self.samples: list[pd.DataFrame] = []

    def add(self, forecast: pd.DataFrame, features: pd.DataFrame | None) -> None:
        self.columns = quantile_columns(forecast)
        self.rows += len(forecast)
        if len(self.columns) < 2:
            return
        values = forecast[self.columns].to_numpy(dtype="float64")
        steps = np.diff(values, axis=1)
        crossing = (steps < 0).any(axis=1)
        self.crossing += int(crossing.sum())
        self.largest = max(self.largest, -float(np.nanmin(steps, initial=0.0)))
        if crossing.any() and sum(map(len, self.samples)) < SAMPLE_ROWS:
            self.samples.append(forecast.loc[crossing].head(SAMPLE_ROWS))

    def result(self) -> QualityResult:
        columns, rows, count = self.columns, self.rows, self.crossing
        if len(columns) < 2:
            return QualityResult(
                passed=True,
                severity=Severity.ERROR,
                description=f"{len(columns)} quantile column: nothing to order.",
                metadata={"rows": rows, "quantiles": ", ".join(columns)},
            )
        return QualityResult(
            passed=count == 0,
            severity=Severity.ERROR,
            description=(
                f"{' <= '.join(columns)} holds on all {rows:,} rows."
                if count == 0
                else f"{count:,} of {rows:,} rows break {' <= '.join(columns)}."
            ),
            metadata={
                "rows": rows,
                "crossing_rows": count,
                "largest_crossing": round(max(0.0, self.largest), 6),
                "quantiles": ", ".join(columns),
            },
            sample=_first_rows(self.samples),
        )


class NaiveBand(_Tally):
    """The naive band's rule (`forecast_within_naive_band`) with its weeks and ratios."""

    def __init__(self, weeks: int, min_ratio: float, max_ratio: float) -> None:
        self.weeks, self.min_ratio, self.max_ratio = weeks, min_ratio, max_ratio
        self.demand: pd.Series | None = None  # active demand per week, summed over chunks
        self.totals: pd.Series | None = None  # point forecast per horizon, summed over chunks

    def add(self, forecast: pd.DataFrame, features: pd.DataFrame | None) -> None:
        self.demand = _add(self.demand, _weekly_active_demand(features))
        self.totals = _add(
            self.totals, forecast.groupby("horizon")["forecast"].sum().astype("float64")
        )

    def result(self) -> QualityResult:
        level = _level(self.demand, self.weeks)
        totals = self.totals if self.totals is not None else pd.Series(dtype="float64")
        ratios = totals.map(lambda total: _ratio(total, level))
        outside = ~ratios.between(self.min_ratio, self.max_ratio)
        passed = bool(len(totals)) and not outside.any()
        band = f"{self.min_ratio:g}..{self.max_ratio:g} × the naive level {level:,.1f}"
        return QualityResult(
            passed=passed,
            severity=Severity.ERROR,
            description=(
                "No forecast rows to compare with the naive level."
                if not len(totals)
                else f"Every horizon's total forecast is within {band}."
                if passed
                else f"{int(outside.sum())} of {len(totals)} horizons' total forecasts are "
                f"outside {band}."
            ),
            metadata={
                "naive_level": round(level, 3),
                "naive_weeks": self.weeks,
                "lowest_ratio": _number(ratios.min()) if len(ratios) else "n/a",
                "highest_ratio": _number(ratios.max()) if len(ratios) else "n/a",
                "band_min": self.min_ratio,
                "band_max": self.max_ratio,
                "horizons_outside": int(outside.sum()),
            },
            sample=pd.DataFrame(
                {
                    "horizon": totals.index.astype(int),
                    "forecast_total": totals.round(3).to_numpy(),
                    "ratio_to_naive": ratios.round(4).to_numpy(),
                }
            ),
        )


def _weekly_active_demand(features: pd.DataFrame) -> pd.Series:
    """Total demand of the active SKUs per week."""
    active = features.loc[features["active"].astype(bool)]
    return active.groupby("week")["demand"].sum().astype("float64")


def _level(demand: pd.Series | None, weeks: int) -> float:
    """The mean of the last `weeks` weeks' totals (0 without any)."""
    if demand is None or not len(demand):
        return 0.0
    return float(demand.sort_index().iloc[-weeks:].mean())


def _add(total: pd.Series | None, part: pd.Series) -> pd.Series:
    return part if total is None else total.add(part, fill_value=0.0)


def _first_rows(samples: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(samples).head(SAMPLE_ROWS) if samples else pd.DataFrame()


# ---- internals ----


def _is_kind(values: pd.Series, kind: str) -> bool:
    if kind == "text":
        if values.dtype != object and pd.api.types.is_string_dtype(values):
            return not values.hasnans  # a string dtype holds text or missing cells only
        return pd.api.types.infer_dtype(values, skipna=False) in {"string", "empty"}
    if kind == "bool":
        return pd.api.types.is_bool_dtype(values)
    if kind == "float":
        return pd.api.types.is_float_dtype(values)
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _sku_ids(*frames: pd.DataFrame) -> tuple[list[np.ndarray], int]:
    """Each row's SKU number, frame by frame, and how many distinct SKUs the frames hold.

    SKUs are their keys as text, numbered 0, 1, ... in the order they first appear in the frames
    taken in turn. Hash passes over the key columns only: on a week of a million SKUs a
    MultiIndex of the keys (or numpy's `unique`) costs several times more. Only the first row of
    each run of equal keys is hashed (`_run_starts`): a forecast holds its H rows per SKU one
    after the other, so each SKU is hashed once, not H times. Columns of a string dtype are
    hashed as they are (in Arrow when Arrow-backed); others as their text.
    """
    starts = [_run_starts(f) for f in frames]
    columns = []
    for column in KEY_COLUMNS:
        parts = [_as_text(f[column].iloc[s]) for f, s in zip(frames, starts, strict=True)]
        # Empty frames add no rows (pandas would stop ignoring their dtypes in `concat`).
        columns.append(pd.concat([p for p in parts if len(p)] or parts, ignore_index=True))
    # A missing key is a key of its own (the schema rule reports it), never code -1.
    articles, _ = pd.factorize(columns[0], use_na_sentinel=False)
    merchants, distinct = pd.factorize(columns[1], use_na_sentinel=False)
    run_ids, skus = pd.factorize(articles.astype("int64") * max(len(distinct), 1) + merchants)
    bounds = np.cumsum([0, *map(len, starts)])
    ids = [
        np.repeat(run_ids[bounds[i] : bounds[i + 1]], np.diff(np.append(s, len(f))))
        for i, (f, s) in enumerate(zip(frames, starts, strict=True))
    ]
    return ids, len(skus)


@dataclass(frozen=True, eq=False)
class SortedSkus:
    """A frame's SKU keys as fixed-width bytes in increasing order (None: the frame is not so).

    Made by `sorted_skus`; a caller that checks several rules on one week makes it once.
    """

    keys: np.ndarray | None


def sorted_skus(frame: pd.DataFrame) -> SortedSkus:
    """The frame's SKU keys as fixed-width bytes, if they are Arrow text strictly increasing.

    `sales_history` partitions are written sorted by SKU, and the checks read their keys as
    Arrow strings: for those, a sortedness test in Arrow and a binary search replace hashing
    (on a week of 4.5M SKUs, `skus_unique` took 3.3 s and `skus_retained` 4.1 s by hashing).
    Each key is `article_id`, a unit separator (0x1F), `merchant_id`; numpy compares the bytes
    as Arrow does, so the order tested is the order searched. None (hash instead): another dtype,
    a missing key column or value, a key holding a NUL (numpy ignores trailing NULs) or the
    separator (two keys could join alike), keys that are not strictly increasing (a repeat, or
    another order), or keys so unequal in length that padding them all to the longest would
    take far more memory than they hold (`MAX_PADDING`).
    """
    if len(frame) == 0 or any(column not in frame.columns for column in KEY_COLUMNS):
        return SortedSkus(None)
    parts = []
    for column in KEY_COLUMNS:
        values = frame[column]
        if getattr(values.dtype, "storage", None) not in ("pyarrow", "pyarrow_numpy"):
            return SortedSkus(None)
        array = pa.array(values.array)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
            return SortedSkus(None)
        if array.null_count or _holds_byte(array, (0, KEY_SEPARATOR_BYTE)):
            return SortedSkus(None)
        parts.append(array)
    kind = pa.large_string() if any(p.type == pa.large_string() for p in parts) else pa.string()
    parts = [p.cast(kind) for p in parts]  # one string type for the join (a no-op as a rule)
    separator = pa.scalar(chr(KEY_SEPARATOR_BYTE), kind)
    joined = pc.binary_join_element_wise(*parts, separator)
    if len(joined) > 1 and not pc.all(pc.less(joined[:-1], joined[1:])).as_py():
        return SortedSkus(None)
    longest = int(pc.max(pc.binary_length(joined)).as_py())
    if len(joined) * longest > MAX_PADDING * max(joined.nbytes, 1):
        return SortedSkus(None)
    return SortedSkus(_fixed_width(joined, longest))


def _holds_byte(array: pa.Array, values: tuple[int, ...]) -> bool:
    """Whether any string of `array` holds one of the byte `values` (its data buffer, whole)."""
    data = array.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return any(bool((raw == value).any()) for value in values)  # (np.isin: 10x slower)


def _fixed_width(array: pa.Array, width: int) -> np.ndarray:
    """Strings (without NUL bytes) as a numpy bytes array of `width` (their longest length),
    NUL-padded. Unequal lengths are placed a block of strings at a time (index arrays of a block,
    not of every byte at once)."""
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=kind)[
        array.offset : array.offset + len(array) + 1
    ]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    width = max(width, 1)
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    out = np.zeros(len(array) * width, dtype=np.uint8)
    if (lengths == width).all():
        out[:] = data[offsets[0] : offsets[-1]]
        return out.view(f"S{width}")
    for first in range(0, len(array), PADDING_BLOCK):
        last = min(first + PADDING_BLOCK, len(array))
        starts, counts = offsets[first:last], lengths[first:last]
        # Byte j of string i goes to i * width + (j - its start).
        target = np.repeat(np.arange(first, last, dtype=np.int64) * width - starts, counts)
        source = np.arange(offsets[first], offsets[last], dtype=np.int64)
        out[target + source] = data[source]
    return out.view(f"S{width}")


def _found_in(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per key of `keys`: whether `sorted_keys` (strictly increasing) holds it."""
    # One width for both: a search would cut longer keys to the sorted array's width.
    width = max(sorted_keys.dtype.itemsize, keys.dtype.itemsize)
    sorted_keys, keys = sorted_keys.astype(f"S{width}"), keys.astype(f"S{width}")
    at = np.searchsorted(sorted_keys, keys)
    found = at < len(sorted_keys)
    found[found] = sorted_keys[at[found]] == keys[found]
    return found


def _run_starts(frame: pd.DataFrame) -> np.ndarray:
    """Positions where a run of rows with the same keys begins (every row, where unknown).

    Rows of a run share their keys for certain; two runs may still hold the same SKU (the
    frame need not be sorted). Keys are compared where that is exact and cheap: codes of a
    categorical, Arrow strings in Arrow. Other columns (Python objects, whose `==` is not the
    equality of their text: 1 == 1.0) start a run at every row.
    """
    same = np.ones(max(len(frame) - 1, 0), dtype=bool)
    for column in KEY_COLUMNS:
        same &= _same_as_previous(frame[column])
    return np.flatnonzero(np.concatenate([[True], ~same])) if len(frame) else np.arange(0)


def _same_as_previous(values: pd.Series) -> np.ndarray:
    """Per row after the first: whether it holds the row before's value (a missing one: no)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return (codes[1:] == codes[:-1]) & (codes[1:] >= 0)
    if getattr(values.dtype, "storage", None) in ("pyarrow", "pyarrow_numpy"):
        array = pa.array(values.array)
        equal = pc.equal(array[1:], array[:-1])
        return pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    return np.zeros(max(len(values) - 1, 0), dtype=bool)


def _as_text(values: pd.Series) -> pd.Series:
    """Keys as text; a missing key stays missing (one key of its own), whatever the dtype.

    (`astype(str)` writes None as "None" in an object column and keeps it NaN, or makes it
    "nan", in a categorical, depending on its categories.)
    """
    if values.dtype != object and pd.api.types.is_string_dtype(values):
        return values
    return values.astype(str).where(values.notna())


def _problem_skus(
    frame: pd.DataFrame, sku: np.ndarray, problem: np.ndarray, text: str
) -> pd.DataFrame:
    """Keys of the first `SAMPLE_ROWS` SKUs flagged in `problem` (by SKU number), sorted."""
    flagged = np.flatnonzero(problem)[:SAMPLE_ROWS]
    rows = frame.loc[np.isin(sku, flagged), list(KEY_COLUMNS)].astype(str).drop_duplicates()
    return rows.sort_values(list(KEY_COLUMNS), ignore_index=True).assign(problem=text)


def _ratio(value: float, level: float) -> float:
    """`value / level`; against a zero level only zero is normal (1), anything else is infinite."""
    if level == 0:
        return 1.0 if value == 0 else math.inf
    return value / level


def _number(value: float) -> float | str:
    """Metadata numbers must be finite: an infinite ratio is reported as text."""
    return round(float(value), 4) if math.isfinite(value) else "infinite"
