"""Arrow's checks of a sales drop vouch only for what the pandas contract accepts, as it makes it.

`validate_sales_tables` is the fast path of `sales_history`; `validate_sales_drop` stays the
judge. So every drop the fast path returns must be exactly what `validate_sales_drop` makes of
the same files, and every drop it declines goes to `validate_sales_drop`, which words the error.
The broken drops of `test_bad_input_hypothesis` are run through both paths as real files.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from core_frames import sales_drop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input_hypothesis import WEEK, BrokenDrop, broken_drops, land

from zeos_forecast.core.contract import LandingDataError, validate_sales_drop
from zeos_forecast.core.contract_arrow import SKU_ORDER, validate_sales_tables
from zeos_forecast.pipeline.sales_history import _validated_drop
from zeos_forecast.storage import Lake

# Midnight UTC of the week's Monday, on Berlin's clock.
MONDAY_IN_BERLIN = pd.Timestamp(WEEK, tz="UTC").tz_convert("Europe/Berlin")


def parquet_table(frame: pd.DataFrame, **options) -> pa.Table:
    """The frame as a parquet file of it reads back (pandas metadata included)."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, **options)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


def as_pandas_judges(files: list[tuple[str, pa.Table]]) -> pa.Table:
    """What `validate_sales_drop` makes of the files, as a table in the fast path's order."""
    drop = validate_sales_drop([(path, table.to_pandas()) for path, table in files], WEEK)
    table = pa.Table.from_pandas(drop, preserve_index=False).replace_schema_metadata()
    return table.sort_by(SKU_ORDER)


def assert_same_drop(fast: pa.Table, judged: pa.Table) -> None:
    """Same columns, types and values (the week's time unit may differ)."""
    week = fast.schema.get_field_index("week")
    judged = judged.set_column(week, "week", judged["week"].cast(fast.schema.field("week").type))
    assert fast.schema == judged.schema
    assert fast.equals(judged), f"{fast.to_pandas()}\n!=\n{judged.to_pandas()}"


# ---- the fast path vouches for well-formed drops, with the contract's values ----


VALID = {
    "as the tests write it": lambda: [("a.parquet", parquet_table(sales_drop(WEEK)))],
    "float32 measures, int8 flag, dates": lambda: [
        (
            "a.parquet",
            pa.table(
                {
                    "article_id": ["B2", "A1", "A1"],
                    "merchant_id": ["M1", "M2", "M1"],
                    "week": pa.array([WEEK] * 3, pa.date32()),
                    "units_sold": pa.array([1, 0, 3], pa.float32()),
                    "price": pa.array([2.5, None, float("nan")], pa.float32()),
                    "availability": pa.array([0.25, None, 1.0], pa.float32()),
                    "promo": pa.array([1, 0, 1], pa.int8()),
                }
            ),
        )
    ],
    "integer ids, bool and nullable int extras, times with an offset": lambda: [
        (
            "a.parquet",
            pa.table(
                {
                    "article_id": pa.array([7, 8, 9], pa.int64()),
                    "merchant_id": pa.array([1, 1, 2], pa.uint16()),
                    "week": pa.array(
                        [MONDAY_IN_BERLIN + pd.Timedelta(hours=h) for h in (0, 5, 23.99)],
                        pa.timestamp("us", tz="Europe/Berlin"),
                    ),
                    "units_sold": pa.array([1, 2, 3], pa.int32()),
                    "on_display": [True, False, True],
                    "campaign": pa.array([1, None, 0], pa.int64()),
                }
            ),
        )
    ],
    "large strings, a time late on the Monday": lambda: [
        (
            "a.parquet",
            pa.table(
                {
                    "article_id": pa.array(["x", "y z"], pa.large_string()),
                    "merchant_id": pa.array(["Müller", "Ærø"], pa.large_string()),
                    "week": pa.array(
                        [dt.datetime.combine(WEEK, dt.time(23, 59, 59))] * 2, pa.timestamp("s")
                    ),
                    "units_sold": [0.0, 1e9],
                    "list_price": [1e-9, 1e300],
                }
            ),
        )
    ],
    "three files, their extra columns differ": lambda: [
        ("a.parquet", parquet_table(sales_drop(WEEK, n_skus=3).assign(deal=[0.5, np.nan, 1.0]))),
        ("b.parquet", parquet_table(sales_drop(WEEK, n_skus=2, first_sku=3).drop(columns="promo"))),
        ("c.parquet", parquet_table(sales_drop(WEEK, n_skus=2, first_sku=5).assign(feat=-1))),
    ],
}


@pytest.mark.parametrize("case", VALID)
def test_the_fast_path_returns_exactly_what_the_contract_makes_of_a_valid_drop(case):
    files = VALID[case]()

    fast = validate_sales_tables(files, WEEK)

    assert fast is not None, "the fast path declined a plain, valid drop"
    assert_same_drop(fast, as_pandas_judges(files))


def test_the_fast_path_returns_the_drop_sorted_by_sku():
    frame = sales_drop(WEEK, n_skus=50).sample(frac=1.0, random_state=3)
    frame["merchant_id"] = np.resize(["M9", "M1", "M10"], len(frame))

    fast = validate_sales_tables([("a.parquet", parquet_table(frame))], WEEK)

    keys = list(zip(fast["article_id"].to_pylist(), fast["merchant_id"].to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_arrow_tells_whitespace_exactly_as_python_does():
    # The fast path finds blank ids with Arrow's whitespace, the contract with str.strip().
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]

    assert pc.utf8_is_space(pa.array(chars)).to_pylist() == [c.isspace() for c in chars]


# ---- it declines anything the contract rejects or reads differently ----


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values))


GOOD = parquet_table(sales_drop(WEEK))
DECLINED = {
    "no rows": GOOD.slice(0, 0),
    "a missing column": GOOD.drop_columns("units_sold"),
    "a blank id": with_column(GOOD, "merchant_id", ["M0", " \t", "M0", "M1", "M0", "M1"]),
    "a missing id": with_column(GOOD, "article_id", ["A", None, "B", "C", "D", "E"]),
    "float ids": with_column(GOOD, "article_id", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    "a missing integer id": with_column(GOOD, "article_id", pa.array([1, None, 3, 4, 5, 6])),
    "another week": with_column(GOOD, "week", pa.array([WEEK + dt.timedelta(days=7)] * 6)),
    "the Sunday before": with_column(
        GOOD, "week", pa.array([dt.datetime(2023, 12, 31, 23, 0)] * 6, pa.timestamp("ms"))
    ),
    "weeks as text": with_column(GOOD, "week", [str(WEEK)] * 6),
    "a missing week": with_column(GOOD, "week", pa.array([WEEK, None] * 3, pa.date32())),
    "negative units": with_column(GOOD, "units_sold", [1.0, -1.0, 0, 0, 0, 0]),
    "NaN units": with_column(GOOD, "units_sold", [1.0, float("nan"), 0, 0, 0, 0]),
    "missing units": with_column(GOOD, "units_sold", [1.0, None, 0, 0, 0, 0]),
    "too many units": with_column(GOOD, "units_sold", [2e9, 1, 0, 0, 0, 0]),
    "units as text": with_column(GOOD, "units_sold", ["1", "2", "3", "4", "5", "6"]),
    "a price of zero": with_column(GOOD, "price", [0.0, 1, 1, 1, 1, 1]),
    "an infinite list price": with_column(GOOD, "list_price", [float("inf"), 1, 1, 1, 1, 1]),
    "availability above one": with_column(GOOD, "availability", [1.5, 1, 1, 1, 1, 1]),
    "an infinite extra": with_column(GOOD, "promo", [float("-inf"), 1, 1, 1, 1, 1]),
    "a text extra": GOOD.append_column("colour", pa.array(["red"] * 6)),
    "a date extra": GOOD.append_column("restocked", pa.array([WEEK] * 6, pa.date32())),
    "a dictionary column": with_column(
        GOOD, "merchant_id", pa.array(["M0", "M1"] * 3).dictionary_encode()
    ),
    "a missing bool": GOOD.append_column("flag", pa.array([True, None] * 3)),
    "half floats": GOOD.append_column("half", pa.array(np.ones(6, np.float16))),
    "a SKU twice": with_column(GOOD, "article_id", ["A", "B", "A", "C", "D", "E"]),
    "an index column": pa.Table.from_pandas(sales_drop(WEEK).set_index("promo")),
    "nullable pandas dtypes": parquet_table(sales_drop(WEEK).astype({"promo": "Int64"})),
    "broken pandas metadata": GOOD.replace_schema_metadata({b"pandas": b"{not json"}),
    "pandas metadata naming an unknown index": GOOD.replace_schema_metadata(
        {b"pandas": b'{"index_columns": ["x"], "columns": []}'}
    ),
}


@pytest.mark.parametrize("case", DECLINED)
def test_the_fast_path_declines_a_drop_it_cannot_vouch_for(case):
    assert validate_sales_tables([("a.parquet", DECLINED[case])], WEEK) is None


def test_a_sku_in_two_files_is_declined():
    files = [("a.parquet", GOOD), ("b.parquet", GOOD.slice(2, 1))]

    assert validate_sales_tables(files, WEEK) is None


def test_a_drop_of_no_files_is_declined():
    assert validate_sales_tables([], WEEK) is None


# ---- through real files: the week sales_history writes is what the contract made of it ----


def both_paths(drop: BrokenDrop) -> tuple[object, object]:
    """(the pandas contract's outcome, `sales_history`'s): a sorted table or the error."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        land(root, drop)
        lake = Lake(str(root))
        try:
            files = [(f.path, f.frame) for f in lake.read_sales_drop(WEEK)]
            judged = validate_sales_drop(files, WEEK)
            before = pa.Table.from_pandas(judged, preserve_index=False)
            before = before.replace_schema_metadata().sort_by(SKU_ORDER)
        except LandingDataError as error:
            before = error
        try:
            after, _ = _validated_drop(lake, WEEK)
        except LandingDataError as error:
            after = error
    return before, after


def assert_same_outcome(before, after) -> None:
    assert type(before) is type(after), f"{before}\n---\n{after}"
    if isinstance(before, LandingDataError):
        assert str(after) == str(before)
        assert (after.file, after.column, after.hint) == (before.file, before.column, before.hint)
        pd.testing.assert_frame_equal(after.sample, before.sample)
    else:
        assert_same_drop(after, before)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drop=broken_drops)
def test_sales_history_reads_every_broken_drop_exactly_as_the_pandas_contract_does(drop):
    assert_same_outcome(*both_paths(drop))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_files=st.integers(1, 3), first=st.integers(0, 50), data=st.data())
def test_sales_history_reads_valid_parquet_drops_exactly_as_the_pandas_contract_does(
    n_files, first, data
):
    files, sku = {}, first
    for i in range(n_files):
        n = data.draw(st.integers(1, 6))
        frame = sales_drop(WEEK, n_skus=n, first_sku=sku).sample(frac=1.0, random_state=i)
        files[f"part-{i}.parquet"] = _parquet_bytes(frame)
        sku += n

    before, after = both_paths(BrokenDrop("valid", files, allowed=True))

    assert isinstance(after, pa.Table)
    assert_same_outcome(before, after)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()
