"""Tests of the data-quality rules on hand-made frames: each rule passes, and fails as it must."""

import datetime as dt
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zeos_forecast.core import quality
from zeos_forecast.core.quality import Severity

WEEK = dt.date(2025, 6, 2)
KEYS = ["article_id", "merchant_id"]


def weeks_before(n: int, week: dt.date = WEEK) -> dt.date:
    return week - dt.timedelta(weeks=n)


def sales_week(n_skus: int = 5, first_sku: int = 0) -> pd.DataFrame:
    """One valid `sales_history` partition, typed as the asset writes it."""
    skus = np.arange(first_sku, first_sku + n_skus)
    units = (skus % 4).astype("float64")
    availability = np.resize([1.0, 0.8, 0.3], n_skus)
    return pd.DataFrame(
        {
            "article_id": [f"A{s:03d}" for s in skus],
            "merchant_id": [f"M{s % 2}" for s in skus],
            "units_sold": units,
            "price": 9.99 + skus,
            "list_price": 12.99 + skus,
            "availability": availability,
            "promo": (skus % 2).astype("float64"),
            "censored": availability < 1,
            "demand": np.where(availability >= 0.5, units / availability, np.nan),
        }
    )


def features(n_skus: int = 3, weeks: int = 6, demand: float = 10.0) -> pd.DataFrame:
    """A feature frame: every SKU active, constant demand, weeks ending at WEEK."""
    mondays = pd.date_range(end=pd.Timestamp(WEEK), periods=weeks, freq="7D")
    rows = [
        {
            "article_id": f"A{s:03d}",
            "merchant_id": "M0",
            "week": monday,
            "demand": demand,
            "active": True,
        }
        for s in range(n_skus)
        for monday in mondays
    ]
    frame = pd.DataFrame(rows)
    frame["article_id"] = frame["article_id"].astype("category")  # as demand_features stores it
    return frame


def forecast(n_skus: int = 3, horizon: int = 4, value: float = 10.0) -> pd.DataFrame:
    """A valid forecast table: `value` per SKU and week, quantiles around it."""
    rows = [
        {
            "article_id": f"A{s:03d}",
            "merchant_id": "M0",
            "week": WEEK + dt.timedelta(weeks=h),
            "horizon": h,
            "forecast": value,
            "q10": value * 0.5,
            "q50": value,
            "q90": value * 1.5,
            "run_id": "run-1",
        }
        for s in range(n_skus)
        for h in range(1, horizon + 1)
    ]
    frame = pd.DataFrame(rows)
    frame["horizon"] = frame["horizon"].astype("int16")
    return frame


# ---- sales_history: one week ----


def test_a_valid_sales_week_passes_schema_keys_and_values():
    week = sales_week()
    for rule in (quality.sales_schema, quality.sales_unique_skus, quality.sales_values_valid):
        result = rule(week)
        assert result.passed, result.description
        assert result.severity == Severity.ERROR
        assert result.sample.empty


def test_schema_names_missing_columns_and_wrong_types():
    week = sales_week().drop(columns="demand")
    week["units_sold"] = week["units_sold"].astype(str)
    week["censored"] = week["censored"].astype("float64")
    result = quality.sales_schema(week)
    assert not result.passed
    assert result.metadata["bad_columns"] == 3
    found = result.sample.set_index("column")["found"].to_dict()
    assert found == {"demand": "missing", "units_sold": "object", "censored": "float64"}


def test_schema_rejects_ids_that_are_not_text_and_extra_columns_that_are_not_numbers():
    week = sales_week()
    week["article_id"] = np.arange(len(week))
    week["colour"] = "red"
    result = quality.sales_schema(week)
    assert not result.passed
    assert set(result.sample["column"]) == {"article_id", "colour"}


def test_arrow_backed_keys_pass_the_schema_unless_a_key_is_missing():
    week = sales_week()
    week["article_id"] = week["article_id"].astype(pd.ArrowDtype(pa.string()))
    assert quality.sales_schema(week).passed
    week.loc[week.index[1], "article_id"] = None
    result = quality.sales_schema(week)
    assert not result.passed
    assert list(result.sample["column"]) == ["article_id"]


def test_a_missing_key_is_a_sku_of_its_own_not_a_duplicate_of_another():
    week = week_of([("A1", "M1"), (None, "M1"), ("A2", None)], pd.ArrowDtype(pa.string()))
    result = quality.sales_unique_skus(week)
    assert result.passed
    assert result.metadata["skus"] == 3


def test_a_sku_listed_twice_fails_with_both_rows_as_sample():
    week = pd.concat([sales_week(), sales_week(n_skus=1)], ignore_index=True)
    result = quality.sales_unique_skus(week)
    assert not result.passed
    assert result.metadata["duplicate_rows"] == 2
    assert result.metadata["skus"] == 5
    assert list(result.sample["article_id"]) == ["A000", "A000"]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("units_sold", -1.0),
        ("units_sold", np.nan),
        ("units_sold", np.inf),
        ("price", 0.0),
        ("price", -np.inf),
        ("list_price", -5.0),
        ("availability", 1.5),
        ("demand", -0.5),
    ],
)
def test_negative_non_finite_or_out_of_range_values_fail(column, value):
    week = sales_week()
    week.loc[2, column] = value
    result = quality.sales_values_valid(week)
    assert not result.passed
    assert result.metadata["bad_rows"] == 1
    assert result.metadata[f"bad_{column}"] == 1
    assert result.sample["article_id"].tolist() == ["A002"]


def test_prices_and_demand_may_be_empty():
    week = sales_week()
    week.loc[0, ["price", "list_price", "demand"]] = np.nan
    assert quality.sales_values_valid(week).passed


# ---- sales_history: against earlier weeks ----


def test_a_complete_history_window_passes():
    weeks = [weeks_before(i) for i in range(10)]
    result = quality.sales_weeks_present(weeks, WEEK, history_weeks=10)
    assert result.passed
    assert result.severity == Severity.WARN
    assert result.metadata["weeks_present"] == 10


def test_weeks_missing_inside_the_history_warn_and_are_listed():
    weeks = [weeks_before(i) for i in range(10) if i not in (3, 4)]
    result = quality.sales_weeks_present(weeks, WEEK, history_weeks=10)
    assert not result.passed
    assert result.severity == Severity.WARN
    assert result.metadata["weeks_missing"] == 2
    assert result.sample["missing_week"].tolist() == [
        weeks_before(4).isoformat(),
        weeks_before(3).isoformat(),
    ]


def test_weeks_before_the_history_starts_and_after_the_week_are_not_gaps():
    weeks = [weeks_before(i) for i in range(-3, 5)]  # five weeks up to WEEK, three after it
    result = quality.sales_weeks_present(weeks, WEEK, history_weeks=156)
    assert result.passed
    assert result.metadata["weeks_present"] == 5
    assert result.metadata["weeks_before_history"] == 151


def test_the_week_itself_missing_is_a_gap():
    weeks = [weeks_before(i) for i in range(1, 5)]
    result = quality.sales_weeks_present(weeks, WEEK, history_weeks=10)
    assert not result.passed
    assert result.sample["missing_week"].tolist() == [WEEK.isoformat()]


@pytest.mark.parametrize(("units", "passed"), [(100, True), (149, True), (151, False), (49, False)])
def test_volume_warns_beyond_the_allowed_change_from_the_previous_weeks_mean(units, passed):
    previous = {weeks_before(1): 80.0, weeks_before(2): 120.0}  # mean 100
    result = quality.sales_volume_stable(units, previous, max_change=0.5)
    assert result.passed is passed
    assert result.severity == Severity.WARN
    assert result.metadata["previous_mean"] == 100.0
    assert result.metadata["ratio"] == pytest.approx(units / 100)
    assert len(result.sample) == 3


def test_volume_with_nothing_to_compare_passes_and_after_zero_weeks_only_zero_passes():
    assert quality.sales_volume_stable(50.0, {}).passed
    assert quality.sales_volume_stable(0.0, {weeks_before(1): 0.0}).passed
    jump = quality.sales_volume_stable(5.0, {weeks_before(1): 0.0})
    assert not jump.passed
    assert jump.metadata["ratio"] == "infinite"


@pytest.mark.parametrize(("kept", "passed"), [(10, True), (8, True), (7, False)])
def test_sku_share_warns_when_too_few_of_last_weeks_skus_return(kept, passed):
    last_week = sales_week(n_skus=10)
    this_week = pd.concat([last_week.head(kept), sales_week(n_skus=3, first_sku=100)])
    result = quality.sales_skus_retained(this_week, last_week, min_share=0.8)
    assert result.passed is passed
    assert result.severity == Severity.WARN
    assert result.metadata["share"] == kept / 10
    assert result.metadata["skus_new"] == 3
    assert len(result.sample) == min(10 - kept, quality.SAMPLE_ROWS)


def test_sku_share_without_a_previous_week_passes():
    assert quality.sales_skus_retained(sales_week(), None).passed


# ---- demand_forecast ----


def test_a_complete_forecast_passes_every_rule():
    table, window = forecast(), features()
    results = [
        quality.forecast_covers_active_skus(table, window, horizon=4),
        quality.forecast_values_valid(table),
        quality.forecast_quantiles_ordered(table),
        quality.forecast_within_naive_band(table, window),
    ]
    for result in results:
        assert result.passed, result.description
        assert result.severity == Severity.ERROR


def test_an_active_sku_without_forecast_rows_fails_coverage():
    table = forecast()
    table = table[table["article_id"] != "A001"]
    result = quality.forecast_covers_active_skus(table, features(), horizon=4)
    assert not result.passed
    assert result.metadata["missing_skus"] == 1
    assert result.sample[KEYS].values.tolist() == [["A001", "M0"]]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda t: t.drop(index=5),  # a SKU one horizon short
        lambda t: t.assign(horizon=t["horizon"].where(t.index != 5, 1)),  # horizon 1 twice
        lambda t: pd.concat([t, t.iloc[[5]]]),  # one row too many
    ],
)
def test_a_sku_without_exactly_horizons_one_to_h_fails_coverage(break_it):
    result = quality.forecast_covers_active_skus(break_it(forecast()), features(), horizon=4)
    assert not result.passed
    assert result.metadata["incomplete_skus"] == 1
    assert result.sample["article_id"].tolist() == ["A001"]


def test_a_forecast_shorter_than_the_horizon_fails_coverage_for_every_sku():
    result = quality.forecast_covers_active_skus(forecast(horizon=3), features(), horizon=4)
    assert not result.passed
    assert result.metadata["incomplete_skus"] == 3
    assert result.metadata["expected_rows"] == 12


def test_forecasting_an_inactive_sku_fails_coverage():
    window = features()
    window.loc[window["article_id"] == "A002", "active"] = False
    result = quality.forecast_covers_active_skus(forecast(), window, horizon=4)
    assert not result.passed
    assert result.metadata["extra_skus"] == 1
    assert result.metadata["active_skus"] == 2


@pytest.mark.parametrize(
    ("column", "value", "counter"),
    [
        ("forecast", np.nan, "empty_cells"),
        ("q90", np.inf, "infinite_values"),
        ("q10", -0.1, "negative_values"),
        ("forecast", -3.0, "negative_values"),
        ("merchant_id", None, "empty_cells"),
    ],
)
def test_empty_infinite_or_negative_values_fail(column, value, counter):
    table = forecast()
    table[column] = table[column].astype(object)
    table.loc[7, column] = value
    result = quality.forecast_values_valid(table)
    assert not result.passed
    assert result.metadata["bad_rows"] == 1
    assert result.metadata[counter] == 1
    assert result.sample.index.tolist() == [7]


def test_quantile_columns_are_found_by_their_percent_and_sorted():
    table = pd.DataFrame(columns=["forecast", "q97.5", "q5", "q50", "quality", "q2.5"])
    assert quality.quantile_columns(table) == ["q2.5", "q5", "q50", "q97.5"]


def test_crossing_quantiles_fail_whatever_quantiles_exist():
    table = forecast().rename(columns={"q10": "q5", "q90": "q95"})
    table.loc[3, "q95"] = table.loc[3, "q50"] - 1.0
    result = quality.forecast_quantiles_ordered(table)
    assert not result.passed
    assert result.metadata["crossing_rows"] == 1
    assert result.metadata["largest_crossing"] == 1.0
    assert result.metadata["quantiles"] == "q5, q50, q95"


def test_a_single_quantile_has_nothing_to_order():
    assert quality.forecast_quantiles_ordered(forecast().drop(columns=["q10", "q90"])).passed


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(2, 5)),
        elements=st.floats(0, 1e6, allow_nan=False),
    )
)
@settings(max_examples=60, deadline=None)
def test_quantile_order_fails_exactly_on_the_rows_that_decrease(values):
    table = pd.DataFrame(values, columns=[f"q{10 * (i + 1)}" for i in range(values.shape[1])])
    decreasing = int((np.diff(values, axis=1) < 0).any(axis=1).sum())
    result = quality.forecast_quantiles_ordered(table)
    assert result.metadata["crossing_rows"] == decreasing
    assert result.passed is (decreasing == 0)
    sorted_table = pd.DataFrame(np.sort(values, axis=1), columns=table.columns)
    assert quality.forecast_quantiles_ordered(sorted_table).passed


def test_the_naive_level_is_the_mean_total_demand_of_active_skus_in_the_last_weeks():
    window = features(n_skus=2, weeks=6, demand=1.0)
    last = window["week"] == window["week"].max()
    window.loc[last, "demand"] = 9.0  # the last week totals 18, the three before 2 each
    window.loc[window["article_id"] == "A001", "active"] = False  # leaves one active SKU
    assert quality.naive_level(window, weeks=4) == pytest.approx((9.0 + 1 + 1 + 1) / 4)
    assert quality.naive_level(window, weeks=1) == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("scale", "passed"), [(1.0, True), (4.9, True), (5.1, False), (0.19, False)]
)
def test_a_forecast_far_from_the_naive_level_fails_the_sanity_band(scale, passed):
    # Three active SKUs with demand 10 a week: naive level 30; each horizon totals 30 × scale.
    result = quality.forecast_within_naive_band(forecast(value=10.0 * scale), features())
    assert result.passed is passed
    assert result.metadata["naive_level"] == 30.0
    assert result.metadata["highest_ratio"] == pytest.approx(scale)
    assert result.metadata["horizons_outside"] == (0 if passed else 4)
    assert result.sample["ratio_to_naive"].tolist() == pytest.approx([scale] * 4)


def test_the_sanity_band_is_configurable_and_reports_the_worst_horizon():
    table = forecast()
    table.loc[table["horizon"] == 3, "forecast"] = 12.0  # ratio 1.2 at horizon 3
    assert quality.forecast_within_naive_band(table, features()).passed
    tight = quality.forecast_within_naive_band(table, features(), min_ratio=0.9, max_ratio=1.1)
    assert not tight.passed
    assert tight.metadata["horizons_outside"] == 1
    assert tight.metadata["highest_ratio"] == pytest.approx(1.2)


def test_the_sanity_band_after_zero_demand_accepts_only_a_zero_forecast():
    silent = features(demand=0.0)
    assert quality.forecast_within_naive_band(forecast(value=0.0), silent).passed
    result = quality.forecast_within_naive_band(forecast(value=1.0), silent)
    assert not result.passed
    assert result.metadata["highest_ratio"] == "infinite"


def test_the_sanity_band_fails_an_empty_forecast():
    assert not quality.forecast_within_naive_band(forecast().head(0), features()).passed


keys_of_a_week = st.lists(
    st.tuples(st.sampled_from(["A1", "A2", "A10", "B"]), st.sampled_from(["M1", "M2", "1"])),
    max_size=15,
)


# Keys as Python strings, Arrow-backed as the checks read them from the lake, or categorical
# as the features hold them: runs of equal keys are compared in Arrow or by their codes.
key_dtypes = st.sampled_from(
    [object, pd.ArrowDtype(pa.string()), pd.StringDtype("pyarrow"), "category"]
)


def week_of(keys: list[tuple[str, str]], dtype: object = object) -> pd.DataFrame:
    return pd.DataFrame(keys, columns=["article_id", "merchant_id"], dtype=dtype)


@settings(max_examples=100, deadline=None)
@given(this_week=keys_of_a_week, last_week=keys_of_a_week.filter(bool), dtype=key_dtypes)
def test_sku_share_counts_keys_as_sets_and_samples_the_dropped_in_last_weeks_order(
    this_week, last_week, dtype
):
    result = quality.sales_skus_retained(
        week_of(this_week, dtype), week_of(last_week, dtype), min_share=0.8
    )

    now, before = set(this_week), list(dict.fromkeys(last_week))
    dropped = [key for key in before if key not in now]
    assert result.metadata["skus_previous_week"] == len(before)
    assert result.metadata["skus_this_week"] == len(now)
    assert result.metadata["skus_dropped"] == len(dropped)
    assert result.metadata["skus_new"] == len(now - set(before))
    assert result.metadata["share"] == round(1 - len(dropped) / len(before), 4)
    assert list(result.sample.itertuples(index=False, name=None)) == dropped[: quality.SAMPLE_ROWS]


@settings(max_examples=100, deadline=None)
@given(keys=keys_of_a_week, dtype=key_dtypes)
def test_unique_skus_flags_exactly_the_rows_whose_key_repeats(keys, dtype):
    result = quality.sales_unique_skus(week_of(keys, dtype))

    repeated = [key for key in keys if keys.count(key) > 1]
    assert result.passed is (not repeated)
    assert result.metadata["duplicate_rows"] == len(repeated)
    assert result.metadata["skus"] == len(set(keys))
    assert len(result.sample) == min(len(repeated), quality.SAMPLE_ROWS)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["A1", "A2", "A3", "B", None]), st.sampled_from([0, 1, 2, 3, 1.5])
        ),
        max_size=20,
    ),
    active=st.lists(st.sampled_from(["A1", "A2", "A3", "B", "C", None]), max_size=6),
    dtype=key_dtypes,
)
# Found by CI: a missing key was NaN in one categorical and "nan" in another (no categories).
@example(rows=[(None, 0)], active=[None], dtype="category")
def test_coverage_counts_skus_as_sets_of_their_horizons(rows, active, dtype):
    horizon = 2
    table = pd.DataFrame(
        {
            "article_id": pd.Series([a for a, _ in rows], dtype=dtype),
            "merchant_id": pd.Series(["M"] * len(rows), dtype=dtype),
            "horizon": [h for _, h in rows],
        }
    )
    window = week_of([(a, "M") for a in active] + [("Z", "M")], dtype).assign(
        active=[True] * len(active) + [False]
    )

    result = quality.forecast_covers_active_skus(table, window, horizon)

    steps: dict[str, list] = {}
    for article, step in rows:
        steps.setdefault(article, []).append(step)
    complete = {a for a, s in steps.items() if sorted(s) == list(range(1, horizon + 1))}
    wanted = set(active)
    assert result.metadata["missing_skus"] == len(wanted - set(steps))
    assert result.metadata["extra_skus"] == len(set(steps) - wanted)
    assert result.metadata["incomplete_skus"] == len((wanted & set(steps)) - complete)
    assert result.passed is (wanted == complete == set(steps))


# Keys of different lengths, some a prefix of another: the sorted-key path pads them to one width.
sorted_keys_of_a_week = st.lists(
    st.tuples(
        st.sampled_from(["A", "A1", "A10", "A2", "B", "a", "é"]),
        st.sampled_from(["M", "M1", "M10", "1"]),
    ),
    max_size=15,
).map(lambda keys: sorted(set(keys)))
arrow_dtypes = st.sampled_from([pd.ArrowDtype(pa.string()), pd.StringDtype("pyarrow")])


@settings(max_examples=100, deadline=None)
@given(this_week=sorted_keys_of_a_week, last_week=sorted_keys_of_a_week, dtype=arrow_dtypes)
def test_weeks_sorted_by_sku_as_the_lake_holds_them_are_compared_without_hashing_alike(
    this_week, last_week, dtype
):
    now, before = week_of(this_week, dtype), week_of(last_week, dtype)
    assert this_week == [] or quality.sorted_skus(now).keys is not None  # the path under test

    unique = quality.sales_unique_skus(now)
    retained = quality.sales_skus_retained(now, before, min_share=0.8)

    assert unique.passed and unique.metadata["skus"] == len(this_week)
    if last_week:
        dropped = [key for key in last_week if key not in set(this_week)]
        assert retained.metadata["skus_this_week"] == len(this_week)
        assert retained.metadata["skus_dropped"] == len(dropped)
        assert retained.metadata["skus_new"] == len(set(this_week) - set(last_week))
        sample = list(retained.sample.itertuples(index=False, name=None))
        assert sample == dropped[: quality.SAMPLE_ROWS]


@pytest.mark.parametrize(
    "keys",
    [
        [("A\x1fB", "C"), ("A", "B\x1fC")],  # the separator inside a key: two SKUs that join alike
        [("A", "M"), ("A\x00", "M")],  # a NUL, which numpy's bytes would drop at the end
        [("B", "M"), ("A", "M")],  # not in the lake's order
    ],
)
def test_keys_the_sorted_path_cannot_vouch_for_are_hashed(keys):
    week = week_of(keys, pd.ArrowDtype(pa.string()))
    assert quality.sorted_skus(week).keys is None
    assert quality.sales_unique_skus(week).metadata["skus"] == 2
    assert quality.sales_skus_retained(week, week.head(1)).metadata["skus_retained"] == 1


def test_a_sorted_week_with_a_repeated_sku_is_hashed_and_fails():
    week = week_of([("A", "M"), ("A", "M"), ("B", "M")], pd.ArrowDtype(pa.string()))
    assert quality.sorted_skus(week).keys is None
    result = quality.sales_unique_skus(week)
    assert not result.passed
    assert result.metadata["duplicate_rows"] == 2


def test_keys_of_unequal_length_are_padded_block_by_block_alike(monkeypatch):
    monkeypatch.setattr(quality, "PADDING_BLOCK", 2)  # several blocks in a small week
    last = [("A", "M"), ("A1", "M10"), ("A10", "M"), ("B", "M1"), ("B22", "M"), ("é", "M")]
    now = [("A", "M"), ("A10", "M"), ("B", "M1"), ("B3", "M"), ("é", "M")]
    week, before = (week_of(k, pd.ArrowDtype(pa.string())) for k in (now, last))
    assert quality.sorted_skus(week).keys is not None

    result = quality.sales_skus_retained(week, before)

    assert result.metadata["skus_retained"] == 4
    assert result.metadata["skus_new"] == 1
    assert list(result.sample.itertuples(index=False, name=None)) == [("A1", "M10"), ("B22", "M")]


def test_a_week_with_one_very_long_key_is_hashed_not_padded():
    keys = [(f"A{i:03d}", "M") for i in range(50)] + [("Z" * 5_000, "M")]
    week = week_of(keys, pd.ArrowDtype(pa.string()))
    assert quality.sorted_skus(week).keys is None
    assert quality.sales_unique_skus(week).metadata["skus"] == 51


def test_a_week_without_a_key_column_has_no_sorted_keys_and_fails_its_rules_alone():
    week = week_of([("A", "M"), ("B", "M")], pd.ArrowDtype(pa.string())).drop(columns="merchant_id")
    assert quality.sorted_skus(week).keys is None
    assert not quality.sales_schema(week).passed


# ---- the forecast rules over chunks of SKUs, as the checks read a large forecast ----


def _sorted_by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["article_id", "merchant_id"], kind="stable", ignore_index=True)


@settings(max_examples=60, deadline=None)
@given(
    skus=st.lists(
        st.tuples(
            st.sampled_from([f"A{i}" for i in range(8)]),
            st.sampled_from(["M1", "M2"]),
            st.sets(st.integers(1, 4), max_size=4),  # the horizons it has rows for
            st.sampled_from([1.0, 3.0, -1.0, np.nan]),  # its point forecast
            st.booleans(),  # its quantiles cross
        ),
        max_size=12,
        unique_by=lambda sku: sku[:2],
    ),
    active=st.lists(
        st.tuples(st.sampled_from([f"A{i}" for i in range(9)]), st.sampled_from(["M1", "M2"])),
        max_size=10,
        unique=True,
    ),
    cuts=st.lists(st.sampled_from([f"A{i}" for i in range(1, 9)]), max_size=4, unique=True),
)
def test_the_forecast_rules_over_chunks_of_articles_give_the_whole_tables_results(
    skus, active, cuts
):
    rows = [
        {
            "article_id": a, "merchant_id": m, "horizon": h, "forecast": point,
            "q10": 2.0 if crossing else 0.0, "q50": 1.0, "q90": 4.0,
        }
        for a, m, steps, point, crossing in skus
        for h in sorted(steps)
    ]  # fmt: skip
    columns = ["article_id", "merchant_id", "horizon", "forecast", "q10", "q50", "q90"]
    table = _sorted_by_key(pd.DataFrame(rows, columns=columns)).astype({"horizon": "int16"})
    window = _sorted_by_key(
        pd.DataFrame(
            [(a, m, pd.Timestamp(WEEK) - pd.Timedelta(weeks=w), 2.0, True)
             for a, m in active for w in range(3)]
            + [("A0", "M9", pd.Timestamp(WEEK), 5.0, False)],
            columns=["article_id", "merchant_id", "week", "demand", "active"],
        )
    )  # fmt: skip
    edges = [None, *sorted(cuts), None]

    def within(frame: pd.DataFrame, low, high) -> pd.DataFrame:
        article = frame["article_id"]
        keep = np.ones(len(frame), dtype=bool)
        if low is not None:
            keep &= (article >= low).to_numpy()
        if high is not None:
            keep &= (article < high).to_numpy()
        return frame.loc[keep].reset_index(drop=True)

    chunks = [(within(table, lo, hi), within(window, lo, hi)) for lo, hi in pairwise(edges)]

    whole = quality.forecast_rules([(table, window)], horizon=4)
    chunked = quality.forecast_rules(chunks, horizon=4)

    assert whole.keys() == chunked.keys() == set(quality.FORECAST_RULES)
    for name, result in whole.items():
        other = chunked[name]
        assert (other.passed, other.description, other.metadata) == (
            result.passed, result.description, result.metadata
        ), name  # fmt: skip
        pd.testing.assert_frame_equal(
            other.sample.reset_index(drop=True), result.sample.reset_index(drop=True)
        )


def test_a_rule_missing_its_column_in_a_chunk_fails_alone_and_the_others_still_run():
    table = forecast(n_skus=3).drop(columns=["q10", "q50", "q90"])
    chunks = [(table.iloc[:4], features(3)), (table.iloc[4:].drop(columns="horizon"), features(3))]

    results = quality.forecast_rules(chunks, horizon=4)

    assert not results["covers_active_skus"].passed
    assert "column 'horizon' is missing" in results["covers_active_skus"].description
    assert results["values_valid"].passed and results["quantiles_ordered"].passed
