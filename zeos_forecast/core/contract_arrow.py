"""The landing contract checked on Arrow tables, at columnar speed, for drops that keep it.

`validate_sales_tables` vouches for a sales drop whose parquet files are plainly typed and keep
every rule, and never explains a problem: for anything else it returns None, and
`validate_sales_drop` on the files as pandas reads them gives the error (or the result). So every
error is still found, worded and sampled by `contract.py` alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .contract import (
    AVAILABILITY_RULE,
    EXTRA_RULE,
    KEY_COLUMNS,
    PRICE_RULE,
    REQUIRED_COLUMNS,
    UNITS_RULE,
    ValueRule,
    ids_spelled_one_way,
)

__all__ = ["SKU_ORDER", "validate_sales_tables"]

# The order a validated drop comes in (and `sales_history` is written in): readers of a SKU
# range skip row groups by their statistics.
SKU_ORDER = [(column, "ascending") for column in KEY_COLUMNS]
VALIDATED_WEEK_TYPE = pa.timestamp("ns")
_EPOCH = dt.date(1970, 1, 1)
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def validate_sales_tables(files: Sequence[tuple[str, pa.Table]], week: dt.date) -> pa.Table | None:
    """One week's sales drop, validated, when Arrow's checks can vouch for every file of it.

    Args:
        files: `(path, table)` per parquet file of the drop, as read.
        week: The Monday named by the drop's folder.

    Returns:
        The rows of all files sorted by (article_id, merchant_id), with exactly the values of
        `validate_sales_drop` on the same files (`week` as timestamp[ns], the numbers float64,
        empty cells null); None when a file has no rows, a column of another type than a plain
        string, integer, float, bool, date or timestamp, pandas metadata that changes how it
        reads, or a value that breaks a rule, and when a SKU appears twice.
    """
    if not files:
        return None
    tables = [_validated(table, week) for _, table in files]
    if any(table is None for table in tables):
        return None
    # A column some files lack is null in their rows, as pandas' concat makes it NaN.
    combined = pa.concat_tables(tables, promote_options="default").sort_by(SKU_ORDER)
    if not all(ids_spelled_one_way(combined[column]) for column in KEY_COLUMNS):
        return None  # surrounding whitespace or letter-case variants: contract.py says which
    return None if _repeats_a_sku(combined) else combined


def _validated(table: pa.Table, week: dt.date) -> pa.Table | None:
    names = table.column_names
    if table.num_rows == 0 or len(set(names)) < len(names) or not _reads_as_is(table):
        return None
    if any(column not in names for column in REQUIRED_COLUMNS):
        return None
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for column in KEY_COLUMNS:
        ids = _ids(table[column])
        if ids is None:
            return None
        columns[column] = ids
    if not _in_week(table["week"], week):
        return None
    monday = pa.scalar(dt.datetime.combine(week, dt.time()), VALIDATED_WEEK_TYPE)
    columns["week"] = pa.repeat(monday, len(table))
    rules = {
        "units_sold": UNITS_RULE,
        "price": PRICE_RULE,
        "list_price": PRICE_RULE,
        "availability": AVAILABILITY_RULE,
    }
    rules.update({c: EXTRA_RULE for c in names if c not in columns and c not in rules})
    for column, rule in rules.items():
        if column not in names:  # an optional column not delivered
            columns[column] = pa.nulls(len(table), pa.float64())
            continue
        values = _numbers(table[column], rule)
        if values is None:
            return None
        columns[column] = values
    columns["availability"] = pc.fill_null(columns["availability"], 1.0)
    return pa.table(columns)


def _reads_as_is(table: pa.Table) -> bool:
    """Pandas reads the table with arrow's plain types: its pandas metadata changes nothing.

    The metadata can rename columns, make one the index or ask for other dtypes; such a file is
    left to `validate_sales_drop`, which sees it exactly as pandas reads it.
    """
    empty = table.slice(0, 0)
    try:
        as_read = empty.to_pandas()
    except Exception:  # broken metadata: whatever pandas raises, the full read reports it
        return False
    plain = empty.to_pandas(ignore_metadata=True)
    return list(as_read.columns) == table.column_names and as_read.dtypes.equals(plain.dtypes)


def _ids(values: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Text ids (integers as their text); None if one is missing, blank or not valid UTF-8."""
    if values.null_count:
        return None
    if pa.types.is_integer(values.type):
        return pc.cast(values, pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    try:
        values.validate(full=True)  # parquet does not guarantee UTF-8; pandas would fail on it
        text = pc.cast(values, pa.string())  # large_string: fails beyond 2 GiB in one chunk
    except pa.ArrowInvalid:
        return None
    # Blank as str.strip() sees it: Arrow's whitespace is Python's (tested for every code point).
    blank = pc.or_(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text))
    return None if pc.any(blank).as_py() else text


def _in_week(values: pa.ChunkedArray, week: dt.date) -> bool:
    """Every value is a date or a time (UTC) on the folder's Monday."""
    if values.null_count:
        return False
    day = (week - _EPOCH).days
    if pa.types.is_date32(values.type):
        low, high = day, day
        values = pc.cast(values, pa.int32())
    elif pa.types.is_timestamp(values.type):
        per_day = _PER_DAY[values.type.unit]
        low, high = day * per_day, (day + 1) * per_day - 1
        values = pc.cast(values, pa.int64())  # epoch counts: UTC whatever the time zone
    else:
        return False
    bounds = pc.min_max(values)
    return low <= bounds["min"].as_py() and bounds["max"].as_py() <= high


def _numbers(values: pa.ChunkedArray, rule: ValueRule) -> pa.ChunkedArray | None:
    """The column as float64 (NaN as null) if every value keeps `rule`, else None."""
    kind = values.type
    plain = pa.types.is_integer(kind) or kind in (pa.float32(), pa.float64())
    if not (plain or (pa.types.is_boolean(kind) and not values.null_count)):
        return None
    values = pc.cast(values, pa.float64(), safe=False)
    if pa.types.is_floating(kind):
        values = pc.if_else(pc.is_nan(values), None, values)
    if values.null_count and not rule.allow_nan:
        return None
    bounds = pc.min_max(values)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:  # every cell empty
        return values
    above_low = low > rule.low if rule.strict_low else low >= rule.low
    finite = -float("inf") < low and high < float("inf")
    return values if above_low and high <= rule.high and finite else None


def _repeats_a_sku(table: pa.Table) -> bool:
    """Whether two rows share a SKU key; `table` is sorted by it."""
    if len(table) < 2:
        return False
    same = None
    for column in KEY_COLUMNS:
        values = table[column]
        equal = pc.equal(values[1:], values[:-1])
        same = equal if same is None else pc.and_(same, equal)
    return bool(pc.any(same).as_py())
