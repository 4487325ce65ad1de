"""Tests of the landing contract: what a valid drop becomes and how a broken one is reported."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from core_frames import as_csv_text, sales_drop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeos_forecast.core.contract import (
    REQUIRED_COLUMNS,
    LandingDataError,
    validate_metadata,
    validate_sales_drop,
)

WEEK = dt.date(2024, 1, 1)
FOLDER = f"landing/sales/week={WEEK}"
PATH = f"{FOLDER}/part-0.parquet"
OTHER_PATH = f"{FOLDER}/part-1.csv"


def rejection(files, week=WEEK) -> LandingDataError:
    with pytest.raises(LandingDataError) as caught:
        validate_sales_drop(files, week)
    return caught.value


def assert_reported(error: LandingDataError, path: str, column: str, *sample_values: str):
    """The message names the file, the column and shows the offending values."""
    message = str(error)
    assert error.file == path
    assert error.column == column
    assert message.startswith(f"{path}: column '{column}'")
    for value in sample_values:
        assert value in error.sample.to_string()
        assert value in message


def with_cell(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    """A copy of `frame` with one cell replaced (the column becomes object to hold any value)."""
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.at[row, column] = value
    return out


# ---- valid drops ----


def test_a_valid_parquet_style_drop_validates_to_the_documented_columns_and_types():
    drop = sales_drop(WEEK)

    out = validate_sales_drop([(PATH, drop)], WEEK)

    assert list(out.columns) == [
        "article_id",
        "merchant_id",
        "week",
        "units_sold",
        "price",
        "list_price",
        "availability",
        "promo",
    ]
    assert out["article_id"].tolist() == drop["article_id"].tolist()
    assert out["week"].eq(pd.Timestamp(WEEK)).all()
    assert pd.api.types.is_datetime64_dtype(out["week"])
    for column in ("units_sold", "price", "list_price", "availability", "promo"):
        assert out[column].dtype == np.float64
        np.testing.assert_array_equal(out[column], drop[column].astype(float))


def test_a_csv_style_all_text_drop_validates_to_the_same_values_as_its_parquet_twin():
    drop = sales_drop(WEEK)
    text = as_csv_text(drop)
    assert all(text[c].map(type).eq(str).all() for c in text.columns)

    from_text = validate_sales_drop([(OTHER_PATH, text)], WEEK)
    from_parquet = validate_sales_drop([(PATH, drop)], WEEK)

    pd.testing.assert_frame_equal(from_text, from_parquet, check_dtype=False)
    assert from_text["units_sold"].dtype == np.float64


def test_blank_optional_cells_of_a_csv_mean_no_price_and_full_availability():
    text = as_csv_text(sales_drop(WEEK, n_skus=2))
    text.loc[0, ["price", "list_price", "availability"]] = ""

    out = validate_sales_drop([(OTHER_PATH, text)], WEEK)

    assert np.isnan(out.loc[0, "price"]) and np.isnan(out.loc[0, "list_price"])
    assert out.loc[0, "availability"] == 1.0


def test_a_drop_without_optional_columns_gets_nan_prices_and_full_availability():
    drop = sales_drop(WEEK, n_skus=3)[list(REQUIRED_COLUMNS)]

    out = validate_sales_drop([(PATH, drop)], WEEK)

    assert out["price"].isna().all() and out["list_price"].isna().all()
    assert out["availability"].eq(1.0).all()


def test_the_files_of_one_drop_are_combined_into_one_frame():
    first, second = sales_drop(WEEK, n_skus=3), sales_drop(WEEK, n_skus=4, first_sku=3)

    out = validate_sales_drop([(PATH, first), (OTHER_PATH, as_csv_text(second))], WEEK)

    assert len(out) == 7
    assert out.index.tolist() == list(range(7))
    assert not out.duplicated(["article_id", "merchant_id"]).any()


def test_integer_ids_are_accepted_as_their_text():
    drop = sales_drop(WEEK, n_skus=3).assign(article_id=[7, 8, 9], merchant_id=[1, 1, 2])

    out = validate_sales_drop([(PATH, drop)], WEEK)

    assert out["article_id"].tolist() == ["7", "8", "9"]
    assert out["merchant_id"].tolist() == ["1", "1", "2"]


def test_ids_written_as_text_keep_their_leading_zeros():
    text = as_csv_text(sales_drop(WEEK, n_skus=2).assign(article_id=["007", "0008"]))

    out = validate_sales_drop([(OTHER_PATH, text)], WEEK)

    assert out["article_id"].tolist() == ["007", "0008"]


def test_extra_numeric_columns_are_kept_as_float_features():
    drop = sales_drop(WEEK, n_skus=3).assign(
        on_display=[True, False, True], campaign=["1", "0", ""], markdown=[0.1, 0.2, np.nan]
    )

    out = validate_sales_drop([(PATH, drop)], WEEK)

    assert out["on_display"].tolist() == [1.0, 0.0, 1.0]
    assert out["campaign"].tolist()[:2] == [1.0, 0.0] and np.isnan(out["campaign"].iloc[2])
    assert out["promo"].dtype == out["markdown"].dtype == np.float64


# ---- broken drops ----


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_a_missing_required_column_is_named_with_the_columns_found(column):
    drop = sales_drop(WEEK).drop(columns=column)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, column)
    assert "required column is missing" in str(error)
    assert "'price'" in str(error)  # the columns found are listed


def test_a_drop_with_text_in_units_sold_names_the_file_column_and_row():
    drop = with_cell(sales_drop(WEEK), 2, "units_sold", "abc")

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "units_sold", "abc", "A0002")
    assert "is not a number" in error.problem
    assert error.sample.index.tolist() == [2]


def test_a_drop_with_negative_units_names_the_file_column_and_rows():
    drop = sales_drop(WEEK).assign(units_sold=[1.0, -2.0, 3.0, -4.0, 0.0, 1.0])

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "units_sold", "-2.0", "-4.0", "A0001", "A0003")
    assert "2 of 6 rows" in error.problem and ">= 0" in error.problem
    assert error.sample.index.tolist() == [1, 3]


@pytest.mark.parametrize(
    ("value", "problem"), [(np.nan, "is empty"), (np.inf, "not finite"), (-np.inf, "not finite")]
)
def test_missing_or_infinite_units_are_rejected(value, problem):
    drop = with_cell(sales_drop(WEEK), 4, "units_sold", value)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "units_sold", "A0004")
    assert problem in error.problem


def test_a_blank_units_cell_of_a_csv_is_reported_as_empty():
    text = as_csv_text(sales_drop(WEEK))
    text.loc[1, "units_sold"] = ""

    error = rejection([(OTHER_PATH, text)])

    assert_reported(error, OTHER_PATH, "units_sold", "A0001")
    assert "is empty" in error.problem


def test_units_beyond_any_plausible_week_are_rejected():
    drop = with_cell(sales_drop(WEEK), 0, "units_sold", 5e12)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "units_sold", "A0000")
    assert "<=" in error.problem


def test_a_row_of_another_week_is_rejected_naming_the_folder_week():
    text = as_csv_text(sales_drop(WEEK))
    text.loc[3, "week"] = "2024-01-08"

    error = rejection([(OTHER_PATH, text)])

    assert_reported(error, OTHER_PATH, "week", "2024-01-08", "A0003")
    assert f"week={WEEK}" in error.problem


def test_a_week_that_is_not_a_date_is_rejected_with_a_hint_on_the_format():
    drop = with_cell(sales_drop(WEEK), 5, "week", "last monday")

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "week", "last monday", "A0005")
    assert "is not a date" in error.problem
    assert "ISO date" in str(error)


def test_a_week_written_as_a_datetime_at_midnight_is_accepted():
    text = as_csv_text(sales_drop(WEEK, n_skus=2))
    text["week"] = "2024-01-01 00:00:00"

    out = validate_sales_drop([(OTHER_PATH, text)], WEEK)

    assert out["week"].eq(pd.Timestamp(WEEK)).all()


def test_weeks_with_mixed_utc_offsets_are_reported_as_a_landing_error_not_a_crash():
    text = as_csv_text(sales_drop(WEEK, n_skus=2))
    text["week"] = ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00+01:00"]

    # Either accepted as the folder's week or rejected in words, never an AttributeError.
    try:
        out = validate_sales_drop([(OTHER_PATH, text)], WEEK)
    except LandingDataError as error:
        assert_reported(error, OTHER_PATH, "week")
    else:
        assert out["week"].eq(pd.Timestamp(WEEK)).all()


def test_a_sku_listed_twice_in_one_file_is_rejected_showing_both_rows():
    drop = sales_drop(WEEK)
    drop.loc[4, ["article_id", "merchant_id"]] = drop.loc[1, ["article_id", "merchant_id"]]

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "article_id, merchant_id", "A0001")
    assert len(error.sample) == 2
    assert error.sample["article_id"].tolist() == ["A0001", "A0001"]
    assert error.sample["file"].tolist() == [PATH, PATH]
    assert sorted(error.sample["units_sold"]) == sorted(drop.loc[[1, 4], "units_sold"])


def test_a_sku_listed_in_two_files_of_one_drop_is_rejected_naming_both_files():
    first = sales_drop(WEEK, n_skus=3)
    second = as_csv_text(sales_drop(WEEK, n_skus=3, first_sku=2))  # A0002 in both files

    error = rejection([(PATH, first), (OTHER_PATH, second)])

    assert error.file in (PATH, OTHER_PATH)
    assert_reported(error, error.file, "article_id, merchant_id", "A0002", PATH, OTHER_PATH)
    assert sorted(error.sample["file"]) == sorted([PATH, OTHER_PATH])
    assert error.sample["article_id"].tolist() == ["A0002", "A0002"]


def test_the_same_article_at_two_merchants_is_not_a_duplicate():
    drop = sales_drop(WEEK, n_skus=2).assign(article_id="A0000", merchant_id=["M0", "M1"])

    assert len(validate_sales_drop([(PATH, drop)], WEEK)) == 2


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_availability_outside_zero_to_one_is_rejected(value):
    drop = with_cell(sales_drop(WEEK), 2, "availability", value)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "availability", str(value), "A0002")


@pytest.mark.parametrize("column", ["price", "list_price"])
def test_a_price_of_zero_is_rejected(column):
    drop = with_cell(sales_drop(WEEK), 3, column, 0.0)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, column, "A0003")
    assert "> 0" in error.problem


@pytest.mark.parametrize(
    "empty", [pd.DataFrame(), sales_drop(WEEK).iloc[:0]], ids=["no columns", "header only"]
)
def test_an_empty_file_is_rejected_naming_it(empty):
    error = rejection([(PATH, sales_drop(WEEK, n_skus=2, first_sku=10)), (OTHER_PATH, empty)])

    assert_reported(error, OTHER_PATH, "*")
    assert "no rows" in error.problem


def test_a_drop_without_data_files_is_rejected_naming_the_folder():
    error = rejection([])

    assert error.file == FOLDER
    assert "no data files" in str(error)


def test_an_extra_text_column_is_rejected_as_not_numeric():
    drop = sales_drop(WEEK).assign(colour=["red", "blue"] * 3)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "colour", "red", "A0000")
    assert "extra columns are numeric" in error.problem


def test_an_extra_date_column_is_rejected_as_not_numeric():
    drop = sales_drop(WEEK).assign(restocked_on=pd.Timestamp("2023-12-28"))

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "restocked_on", "2023-12-28")


def test_float_ids_are_rejected_naming_the_dtype():
    drop = sales_drop(WEEK, n_skus=2).assign(article_id=[1.0, 2.5])

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "article_id", "2.5")
    assert "float64" in error.problem


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_id_is_rejected(blank):
    drop = with_cell(sales_drop(WEEK), 1, "merchant_id", blank)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "merchant_id", "A0001")
    assert "non-empty" in error.problem


def test_a_missing_value_in_nullable_integer_ids_is_rejected():
    ids = pd.array([1, None, 3, 4, 5, 6], dtype="Int64")
    drop = sales_drop(WEEK).assign(article_id=ids)

    error = rejection([(PATH, drop)])

    assert_reported(error, PATH, "article_id", "<NA>")
    assert error.sample.index.tolist() == [1]


def test_the_sample_shows_at_most_five_rows_but_counts_them_all():
    drop = sales_drop(WEEK, n_skus=12).assign(units_sold=-1.0)

    error = rejection([(PATH, drop)])

    assert "12 of 12 rows" in error.problem
    assert "A0004" in str(error) and "A0005" not in str(error)


# ---- any single corrupted cell is reported with its file, column and row ----

NEXT_WEEK = (WEEK + dt.timedelta(weeks=1)).isoformat()
CORRUPTIONS = {
    "article_id": ["", "  ", None],
    "merchant_id": ["", None],
    "week": ["not a date", "2024-13-45", NEXT_WEEK, "2023-12-25"],
    "units_sold": [-1.0, -0.5, np.nan, np.inf, -np.inf, "abc", "1,5", 2e9],
    "price": [0.0, -3.5, "free", np.inf],
    "list_price": [0.0, -1.0, "n/a", np.inf],
    "availability": [1.5, -0.1, "high", np.inf, -np.inf],
    "promo": ["yes", np.inf],
}


def as_text_cell(value) -> str:
    """How a value is written in a CSV cell (missing values are blank)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    column=st.sampled_from(sorted(CORRUPTIONS)),
    data=st.data(),
    csv=st.booleans(),
    corrupt_second_file=st.booleans(),
)
def test_any_single_corrupted_cell_is_reported_with_its_file_column_and_row(
    column, data, csv, corrupt_second_file
):
    value = data.draw(st.sampled_from(CORRUPTIONS[column]), label="value")
    row = data.draw(st.integers(0, 4), label="row")
    files = [
        (PATH, sales_drop(WEEK, n_skus=5)),
        (OTHER_PATH, sales_drop(WEEK, n_skus=5, first_sku=5)),
    ]
    if csv:
        files = [(path, as_csv_text(frame)) for path, frame in files]
        value = as_text_cell(value)
    path, frame = files[corrupt_second_file]
    files[corrupt_second_file] = (path, with_cell(frame, row, column, value))
    sku = frame.loc[row, "article_id"]

    error = rejection(files)

    assert_reported(error, path, column)
    assert row in error.sample.index
    if column != "article_id":
        assert sku in str(error)


# ---- metadata ----

ARTICLES = "landing/articles/articles.parquet"
MORE_ARTICLES = "landing/articles/more.csv"


def test_metadata_files_are_combined_with_their_keys_as_text():
    first = pd.DataFrame({"article_id": [1, 2], "category": ["shoes", "bags"]})
    second = pd.DataFrame({"article_id": ["A3"], "category": ["tops"]})

    out = validate_metadata([(ARTICLES, first), (MORE_ARTICLES, second)], "article_id")

    assert out["article_id"].tolist() == ["1", "2", "A3"]
    assert out["category"].tolist() == ["shoes", "bags", "tops"]


def test_no_metadata_files_means_no_metadata():
    assert validate_metadata([], "merchant_id") is None


def test_a_metadata_file_without_its_key_column_is_named():
    frame = pd.DataFrame({"id": ["A1"], "category": ["shoes"]})

    with pytest.raises(LandingDataError) as caught:
        validate_metadata([(ARTICLES, frame)], "article_id")

    assert_reported(caught.value, ARTICLES, "article_id")
    assert "'category'" in str(caught.value)


def test_an_article_described_in_two_files_is_rejected_showing_both_rows():
    first = pd.DataFrame({"article_id": ["A1", "A2"], "category": ["shoes", "bags"]})
    second = pd.DataFrame({"article_id": ["A2"], "category": ["tops"]})

    with pytest.raises(LandingDataError) as caught:
        validate_metadata([(ARTICLES, first), (MORE_ARTICLES, second)], "article_id")

    assert caught.value.column == "article_id"
    assert caught.value.sample["category"].tolist() == ["bags", "tops"]


def test_an_article_repeated_inside_the_second_file_names_that_file_and_its_rows():
    first = pd.DataFrame({"article_id": ["A1", "A2"], "category": ["shoes", "bags"]})
    second = pd.DataFrame({"article_id": ["A3", "A3"], "category": ["tops", "knitwear"]})

    with pytest.raises(LandingDataError) as caught:
        validate_metadata([(ARTICLES, first), (MORE_ARTICLES, second)], "article_id")

    assert_reported(caught.value, MORE_ARTICLES, "article_id", "A3", "knitwear")
    # "row numbers are 0-based within the file": the repeats are rows 0 and 1 of more.csv.
    assert caught.value.sample.index.tolist() == [0, 1]
