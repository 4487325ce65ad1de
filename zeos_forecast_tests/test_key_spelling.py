"""Ids are taken exactly as written, so spellings of one id that differ are refused, not split.

The rule (docs/landing-contract.md): an `article_id` or `merchant_id` with whitespace before or
after it (`'A0000000 '`, `' A0000001'`), or one that differs from another id of the same drop only
by letter case (`a0000000` next to `A0000000`), fails validation with the file, the column and the
offending rows; it would otherwise become a separate SKU without anyone noticing. Both validation
paths (Arrow for plain parquet drops, pandas for the rest) agree, for any ids hypothesis makes.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeos_forecast.core.contract import LandingDataError, validate_metadata, validate_sales_drop
from zeos_forecast.core.contract_arrow import validate_sales_tables
from zeos_forecast.pipeline import launch

WEEK = dt.date(2025, 6, 2)
WHITESPACE = [" ", "\t", "\n", "\u00a0", "\u3000", "  "]


def drop(articles: list[str], merchants: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "article_id": articles,
            "merchant_id": merchants or ["M001"] * len(articles),
            "week": pd.Timestamp(WEEK),
            "units_sold": [float(i) for i in range(len(articles))],
        }
    )


def as_parquet_table(frame: pd.DataFrame) -> pa.Table:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pq.read_table(pa.BufferReader(buffer.getvalue()))


def refusal(frame: pd.DataFrame, path: str = "landing/sales/week=2025-06-02/a.parquet") -> str:
    """Both paths on the same file: Arrow declines it, pandas refuses it; the message."""
    assert validate_sales_tables([(path, as_parquet_table(frame))], WEEK) is None
    with pytest.raises(LandingDataError) as refused:
        validate_sales_drop([(path, frame)], WEEK)
    return str(refused.value)


_ids = st.lists(
    st.text(alphabet="ABCDEFGHJK0123456789", min_size=4, max_size=10).filter(
        lambda text: any(c.isalpha() for c in text)
    ),
    min_size=2,
    max_size=30,
    unique=True,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=_ids,
    data=st.data(),
    column=st.sampled_from(["article_id", "merchant_id"]),
)
def test_an_id_with_surrounding_whitespace_is_refused_naming_the_file_column_and_row(
    ids, data, column
):
    frame = drop(ids, [f"M{i:03d}" for i in range(len(ids))])
    row = data.draw(st.integers(0, len(ids) - 1))
    space = data.draw(st.sampled_from(WHITESPACE))
    padded = data.draw(st.sampled_from([space + "{}", "{}" + space, space + "{}" + space]))
    frame.loc[row, column] = padded.format(frame.loc[row, column])

    message = refusal(frame)

    assert message.startswith(f"landing/sales/week=2025-06-02/a.parquet: column '{column}'")
    assert "whitespace) before or after" in message
    assert repr(frame.loc[row, column]) in message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=_ids, data=st.data())
def test_ids_that_differ_only_by_letter_case_are_refused_with_both_spellings(ids, data):
    original = data.draw(st.sampled_from(ids))
    variant = original.lower()
    frame = drop([*ids, variant])

    message = refusal(frame)

    assert "column 'article_id'" in message
    assert "differ from another id of the drop only by letter case" in message
    assert original in message and variant in message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=_ids, lower=st.booleans())
def test_ids_written_one_way_are_accepted_by_both_paths(ids, lower):
    ids = [i.lower() for i in ids] if lower else ids
    frame = drop(ids)

    fast = validate_sales_tables([("a.parquet", as_parquet_table(frame))], WEEK)
    slow = validate_sales_drop([("a.parquet", frame)], WEEK)

    assert fast is not None
    assert sorted(fast["article_id"].to_pylist()) == sorted(slow["article_id"])


def test_case_variants_across_two_files_of_one_drop_name_both_files():
    first, second = drop(["A0000000", "A0000001"]), drop(["a0000000"])

    with pytest.raises(LandingDataError) as refused:
        validate_sales_drop([("w/first.csv", first), ("w/second.csv", second)], WEEK)

    assert "w/first.csv" in str(refused.value) and "w/second.csv" in str(refused.value)


def test_metadata_ids_follow_the_same_rule():
    articles = pd.DataFrame({"article_id": ["A1", "a1"], "brand": ["x", "y"]})
    with pytest.raises(LandingDataError, match="only by letter case"):
        validate_metadata([("landing/articles/a.csv", articles)], "article_id")
    padded = pd.DataFrame({"article_id": ["A1 "], "brand": ["x"]})
    with pytest.raises(LandingDataError, match="before or after them"):
        validate_metadata([("landing/articles/a.csv", padded)], "article_id")


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["{} ", " {}", "lower case"])
def test_a_weekly_run_refuses_a_drop_with_such_ids_and_writes_nothing_downstream(
    spelling, landing_factory, lake_copy, instance, fast_forecast
):
    root = lake_copy(landing_factory(20, 10, WEEK, seed=4))
    path = Path(root) / "landing" / "sales" / f"week={WEEK}" / "part-0.parquet"
    frame = pd.read_parquet(path)
    article = frame.loc[0, "article_id"]  # an upper-case id such as A0000000
    if spelling == "lower case":
        frame = pd.concat([frame, frame.head(1).assign(article_id=article.lower())])
    else:
        frame.loc[0, "article_id"] = spelling.format(article)
    frame.to_parquet(path, index=False)
    (path.parent / "_SUCCESS").touch()  # files first, the marker last

    with pytest.raises(launch.RunFailed) as failed:
        launch.forecast_week(
            WEEK, str(root), instance, fast_forecast, {"history_weeks": 10}, report=None
        )

    assert f"{path}: column 'article_id'" in str(failed.value)
    assert not (root / "demand_features").exists()
    assert not (root / "sales_history" / f"week={WEEK}").exists()
