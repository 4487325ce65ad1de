"""The landing contract for weekly sales drops, and the errors a user gets when a drop breaks it.

A drop is validated as a whole (all its files together) before anything is written downstream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "KEY_COLUMNS",
    "OPTIONAL_NUMERIC_COLUMNS",
    "PLAN_REQUIRED_COLUMNS",
    "REQUIRED_COLUMNS",
    "SEASON_WEEKS",
    "LandingDataError",
    "ValueRule",
    "case_variants",
    "ids_spelled_one_way",
    "padded_ids",
    "validate_metadata",
    "validate_plan_drop",
    "validate_sales_drop",
]

KEY_COLUMNS = ("article_id", "merchant_id")
# Weeks from a week to the same week one year earlier (the seasonal lag of weekly retail data).
SEASON_WEEKS = 52
REQUIRED_COLUMNS = (*KEY_COLUMNS, "week", "units_sold")
OPTIONAL_NUMERIC_COLUMNS = ("price", "list_price", "availability")
# A plan holds known future inputs (prices, promotions) for the week it names, not outcomes.
PLAN_REQUIRED_COLUMNS = (*KEY_COLUMNS, "week")
NOT_PLANNABLE_COLUMNS = ("units_sold", "availability")
SAMPLE_ROWS = 5
DEFAULT_HINT = "Correct the file and drop it again: the files first, the _SUCCESS marker last."
# Ids are compared exactly as written; spellings that only a person would take for the same id
# are refused rather than silently made two SKUs (see docs/landing-contract.md).
KEY_RULE_HINT = (
    "Write every id exactly one way (no surrounding whitespace, one letter case) in every file "
    "and every week, then drop the week again: the files first, the _SUCCESS marker last."
)
# Units above this in one SKU-week are a unit or parsing mistake, not demand.
MAX_UNITS_PER_WEEK = 1e9


@dataclass(frozen=True)
class ValueRule:
    """The values a numeric column may hold.

    Attributes:
        low, high: Bounds of the values (both included unless `strict_low`).
        strict_low: `low` itself is not allowed.
        allow_nan: Empty cells are allowed (an absent value, not an error).
    """

    low: float
    high: float
    strict_low: bool = False
    allow_nan: bool = True


UNITS_RULE = ValueRule(0.0, MAX_UNITS_PER_WEEK, allow_nan=False)
PRICE_RULE = ValueRule(0.0, np.inf, strict_low=True)
AVAILABILITY_RULE = ValueRule(0.0, 1.0)
EXTRA_RULE = ValueRule(-np.inf, np.inf)
EXTRA_WHAT = "an extra column (extra columns are numeric dynamic features)"


class LandingDataError(ValueError):
    """A landing file breaks the data contract.

    Attributes:
        file: The offending file.
        column: The offending column (or the key columns, for duplicates).
        problem: What is wrong, in words.
        sample: A few offending rows, as they were read.
        hint: What to do about it (a generic re-drop instruction unless a rule says better).
    """

    def __init__(
        self,
        file: str,
        column: str,
        problem: str,
        sample: pd.DataFrame | None = None,
        hint: str = "",
    ):
        self.file, self.column, self.problem = file, column, problem
        self.sample = sample if sample is not None else pd.DataFrame()
        self.hint = hint or DEFAULT_HINT
        lines = [f"{file}: column '{column}': {problem}"]
        if not self.sample.empty:
            lines += [
                "Sample of offending rows (row numbers are 0-based within the file):",
                self.sample.head(SAMPLE_ROWS).to_string(),
            ]
        lines.append(self.hint)
        super().__init__("\n".join(lines))


def validate_sales_drop(files: Sequence[tuple[str, pd.DataFrame]], week: dt.date) -> pd.DataFrame:
    """Checks every file of one week's sales drop against the contract and combines them.

    Args:
        files: `(path, frame)` per data file, as read (CSV columns arrive as text).
        week: The Monday named by the drop's folder.

    Returns:
        One frame with `article_id`, `merchant_id` (str), `week` (datetime64), `units_sold`,
        `price`, `list_price`, `availability` (float64; absent optional columns are NaN, and a
        missing availability means fully in stock) plus any extra numeric columns.

    Raises:
        LandingDataError: naming the file, the column and a sample of offending rows.
    """
    if not files:
        raise LandingDataError(
            f"landing/sales/week={week}",
            "*",
            "the drop has no data files",
            hint="Put .parquet or .csv files next to the _SUCCESS marker.",
        )
    frames = [_validate_file(path, frame, week) for path, frame in files]
    combined = pd.concat(frames, keys=range(len(frames)), names=["file_index", None])
    paths = [path for path, _ in files]
    for column in KEY_COLUMNS:
        _reject_case_variants(combined, column, paths)
    return _reject_duplicate_keys(combined, paths)


def validate_plan_drop(files: Sequence[tuple[str, pd.DataFrame]], week: dt.date) -> pd.DataFrame:
    """Checks the files of the plan for one future week and combines them.

    A plan names, per SKU, the inputs known in advance for `week`: `price`, `list_price` and
    promotion columns (any other numeric column). Missing values mean "no plan for this input".

    Returns:
        One frame with the keys, `week`, `price` and `list_price` (NaN when absent) and the
        extra numeric columns, all float64.

    Raises:
        LandingDataError: for the same problems as a sales drop, and for outcome columns
            (`units_sold`, `availability`), which a plan cannot know.
    """
    if not files:
        raise LandingDataError(
            f"landing/plans/week={week}",
            "*",
            "the plan has no data files",
            hint="Put .parquet or .csv files next to the _SUCCESS marker.",
        )
    frames = [_validate_file(path, frame, week, plan=True) for path, frame in files]
    combined = pd.concat(frames, keys=range(len(frames)), names=["file_index", None])
    paths = [path for path, _ in files]
    for column in KEY_COLUMNS:
        _reject_case_variants(combined, column, paths)
    return _reject_duplicate_keys(combined, paths)


def _validate_file(
    path: str, frame: pd.DataFrame, week: dt.date, plan: bool = False
) -> pd.DataFrame:
    if frame.empty:
        raise LandingDataError(
            path,
            "*",
            "the file has no rows",
            hint="Remove the empty file or re-export it with the week's sales.",
        )
    required = PLAN_REQUIRED_COLUMNS if plan else REQUIRED_COLUMNS
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LandingDataError(
            path,
            missing[0],
            f"required column is missing (found columns: {list(frame.columns)})",
            frame.head(SAMPLE_ROWS),
            hint=f"Every {'plan' if plan else 'sales'} file needs {list(required)}.",
        )
    outcomes = [c for c in NOT_PLANNABLE_COLUMNS if plan and c in frame.columns]
    if outcomes:
        raise LandingDataError(
            path,
            outcomes[0],
            "a plan cannot hold outcomes of the week",
            frame.head(SAMPLE_ROWS),
            hint="Plans carry known future inputs (prices, promotions); sales go to landing/sales.",
        )
    out = pd.DataFrame(index=frame.index)
    for column in KEY_COLUMNS:
        out[column] = _ids(path, frame, column)
    out["week"] = _weeks(path, frame, week)
    if not plan:
        out["units_sold"] = _numbers(path, frame, "units_sold", UNITS_RULE)
    out["price"] = _optional(path, frame, "price", PRICE_RULE)
    out["list_price"] = _optional(path, frame, "list_price", PRICE_RULE)
    if not plan:
        availability = _optional(path, frame, "availability", AVAILABILITY_RULE)
        out["availability"] = availability.fillna(1.0)
    extras = [c for c in frame.columns if c not in out.columns]
    for column in extras:
        out[column] = _numbers(path, frame, column, EXTRA_RULE, what=EXTRA_WHAT)
    return out


def _ids(path: str, frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if pd.api.types.is_integer_dtype(values):
        values = values.astype("string")  # integer ids are the same ids written as text
    elif not (pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)):
        raise LandingDataError(
            path,
            column,
            f"ids must be strings, found dtype {values.dtype}",
            frame[[column]].head(SAMPLE_ROWS),
        )
    text = values.astype("string")
    bad = text.isna() | (text.str.strip() == "")
    if pd.api.types.is_object_dtype(values):
        bad |= ~values.map(lambda v: isinstance(v, str))
    _raise_if(bad, path, frame, column, "ids must be non-empty strings")
    ids = text.astype(str)
    padded = pd.Series(padded_ids(pa.array(ids.to_numpy(), pa.string())), index=frame.index)
    if padded.any():
        raise LandingDataError(
            path,
            column,
            f"{int(padded.sum())} of {len(frame)} rows: ids have spaces (or other whitespace) "
            "before or after them, so 'A1 ' and 'A1' would be two different SKUs",
            frame.loc[padded].assign(**{f"{column} as read": ids[padded].map(repr)}),
            hint=KEY_RULE_HINT,
        )
    return ids


def _weeks(path: str, frame: pd.DataFrame, week: dt.date) -> pd.Series:
    # Dates without an offset are UTC (the partitions' time zone); offsets are converted to it.
    parsed = pd.to_datetime(frame["week"], errors="coerce", format="mixed", utc=True)
    parsed = parsed.dt.tz_localize(None)
    _raise_if(
        parsed.isna(),
        path,
        frame,
        "week",
        "is not a date",
        hint="Write the week as an ISO date, e.g. 2024-01-01.",
    )
    expected = pd.Timestamp(week)
    _raise_if(
        parsed.dt.normalize() != expected,
        path,
        frame,
        "week",
        f"does not match the drop's folder week={week}",
        hint="Every row of a drop must belong to the Monday its folder names.",
    )
    return parsed.dt.normalize()


def _numbers(
    path: str, frame: pd.DataFrame, column: str, rule: ValueRule, what: str = ""
) -> pd.Series:
    low, high, strict_low = rule.low, rule.high, rule.strict_low
    raw = frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw) or pd.api.types.is_timedelta64_dtype(raw):
        _raise_if(
            pd.Series(True, index=frame.index),
            path,
            frame,
            column,
            f"is not a number (found dtype {raw.dtype})",
        )
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype("int8")
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    blank = raw.isna() if not pd.api.types.is_object_dtype(raw) else raw.isna() | (raw == "")
    unparsable = values.isna() & ~blank
    _raise_if(
        unparsable, path, frame, column, f"is not a number{' (' + what + ')' if what else ''}"
    )
    if not rule.allow_nan:
        _raise_if(values.isna(), path, frame, column, "is empty")
    _raise_if(~np.isfinite(values) & values.notna(), path, frame, column, "is not finite")
    too_low = (values <= low) if strict_low else (values < low)
    _raise_if(
        too_low.fillna(False), path, frame, column, f"must be {'>' if strict_low else '>='} {low:g}"
    )
    _raise_if((values > high).fillna(False), path, frame, column, f"must be <= {high:g}")
    return values


def _optional(path: str, frame: pd.DataFrame, column: str, rule: ValueRule) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return _numbers(path, frame, column, rule)


def padded_ids(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per id: whether it has whitespace before or after it (Arrow's Unicode whitespace)."""
    trimmed = pc.utf8_trim_whitespace(ids)
    return pc.not_equal(trimmed, ids).to_numpy(zero_copy_only=False)


def ids_spelled_one_way(ids: pa.Array | pa.ChunkedArray) -> bool:
    """Whether no id has surrounding whitespace and no two differ only by letter case.

    Elementwise passes for the usual ids (ASCII in one case: 5M ids in about 0.3 s); a hash of
    the distinct ids only for mixed-case or non-ASCII ones.
    """
    if pc.any(pc.not_equal(pc.utf8_trim_whitespace(ids), ids)).as_py():
        return False
    if pc.all(pc.string_is_ascii(ids)).as_py() and (
        pc.all(pc.equal(pc.ascii_upper(ids), ids)).as_py()
        or pc.all(pc.equal(pc.ascii_lower(ids), ids)).as_py()
    ):
        return True  # every id in one case: none can differ from another by case only
    distinct = pc.unique(ids)
    return pc.count_distinct(pc.utf8_lower(distinct)).as_py() == len(distinct)


def case_variants(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Per id: whether another id of `ids` differs from it only by letter case (Arrow's
    Unicode lower-casing), like `A0000000` and `a0000000`."""
    lowered = pc.utf8_lower(ids)
    spellings = (
        pa.table({"lowered": lowered, "id": ids})
        .group_by("lowered")
        .aggregate([("id", "count_distinct")])
    )
    clashing = spellings.filter(pc.greater(spellings["id_count_distinct"], 1))["lowered"]
    return pc.is_in(lowered, value_set=clashing.combine_chunks()).to_numpy(zero_copy_only=False)


def _reject_case_variants(combined: pd.DataFrame, column: str, paths: list[str]) -> None:
    """Raises when two ids of `column` in one drop (or folder) differ only by letter case."""
    ids = pa.array(combined[column].to_numpy(), pa.string())
    if ids_spelled_one_way(ids):
        return
    clash = case_variants(ids)
    rows = combined.loc[clash]
    file_index = rows.index.get_level_values("file_index")
    shown = [c for c in (*KEY_COLUMNS, "week", "units_sold") if c in rows.columns]
    sample = (
        rows[shown]
        .assign(file=[paths[i] for i in file_index])
        .sort_values(column, key=lambda ids: ids.str.lower())
        .droplevel("file_index")
    )
    raise LandingDataError(
        paths[file_index[0]],
        column,
        f"{int(clash.sum())} rows: ids that differ from another id of the drop only by letter "
        "case, so 'A1' and 'a1' would be two different SKUs",
        sample,
        hint=KEY_RULE_HINT,
    )


def _reject_duplicate_keys(combined: pd.DataFrame, paths: list[str]) -> pd.DataFrame:
    """Raises on a SKU listed twice in one drop (within a file or across files); else flattens."""
    duplicated = combined.duplicated(list(KEY_COLUMNS), keep=False)
    if duplicated.any():
        shown = [c for c in (*KEY_COLUMNS, "week", "units_sold") if c in combined.columns]
        rows = combined.loc[duplicated, shown]
        file_index = rows.index.get_level_values("file_index")
        sample = rows.assign(file=[paths[i] for i in file_index]).sort_values(list(KEY_COLUMNS))
        raise LandingDataError(
            paths[file_index[0]],
            "article_id, merchant_id",
            f"{int(duplicated.sum())} rows share a SKU key within the week's drop",
            sample.droplevel("file_index"),
            hint="Each (article_id, merchant_id) may appear once per week.",
        )
    return combined.reset_index(drop=True)


def _raise_if(
    mask: pd.Series, path: str, frame: pd.DataFrame, column: str, problem: str, hint: str = ""
) -> None:
    if bool(mask.any()):
        count = int(mask.sum())
        raise LandingDataError(
            path,
            column,
            f"{count} of {len(frame)} rows: {problem}",
            frame.loc[mask].head(SAMPLE_ROWS),
            hint=hint,
        )


def validate_metadata(files: Sequence[tuple[str, pd.DataFrame]], key: str) -> pd.DataFrame | None:
    """Combines metadata files (articles or merchants) keyed by `key`; None when there are none.

    Raises:
        LandingDataError: when a file lacks the key column, has blank keys, or a key repeats.
    """
    if not files:
        return None
    frames = []
    for path, frame in files:
        if key not in frame.columns:
            raise LandingDataError(
                path, key, f"key column is missing (found: {list(frame.columns)})"
            )
        frames.append(frame.assign(**{key: _ids(path, frame, key)}))
    combined = pd.concat(frames, keys=range(len(frames)), names=["file_index", None])
    _reject_case_variants(combined, key, [path for path, _ in files])
    repeated = combined[key].duplicated(keep=False)
    if repeated.any():
        paths = [path for path, _ in files]
        rows = combined.loc[repeated]
        file_index = rows.index.get_level_values("file_index")
        raise LandingDataError(
            paths[file_index[0]],
            key,
            f"{int(repeated.sum())} rows describe an id that another row describes too",
            rows.assign(file=[paths[i] for i in file_index]).droplevel("file_index"),
            hint="Keep one row per id across the folder's files.",
        )
    return combined.reset_index(drop=True)
