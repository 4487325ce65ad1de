"""Tests of demand derivation and of the feature frame's documented rules."""

import numpy as np
import pandas as pd
import pytest
from core_frames import ORIGIN, history_of, monday, panel_history, sales_row
from hypothesis import given, settings
from hypothesis import strategies as st

from zeos_forecast.core.demand import derive_demand
from zeos_forecast.core.feature_shards import _skus_without
from zeos_forecast.core.features import (
    BASE_COLUMNS,
    MAX_KEY_CATEGORIES,
    RETURNING_SKUS,
    SMOOTHING,
    StaticTable,
    _carry_over_gaps,
    build_demand_features,
    dynamic_columns,
    returning_skus,
    static_columns,
)
from zeos_forecast.datasets.synthetic import generate_panel

HISTORY_WEEKS, ACTIVE_WEEKS = 52, 13


def features(rows: list[dict], **kwargs) -> pd.DataFrame:
    return build_demand_features(history_of(rows), ORIGIN, HISTORY_WEEKS, ACTIVE_WEEKS, **kwargs)


def sku_frame(frame: pd.DataFrame, article_id: str, merchant_id: str = "M1") -> pd.DataFrame:
    mask = (frame["article_id"] == article_id) & (frame["merchant_id"] == merchant_id)
    return frame.loc[mask].set_index("week")


def steady(article_id: str, weeks: range, units: float = 10.0, **extra) -> list[dict]:
    """A SKU selling `units` with full stock in each of `weeks` (weeks before the origin)."""
    return [sales_row(article_id, "M1", w, units, **extra) for w in weeks]


# ---- derive_demand ----


def test_a_fully_available_week_has_its_sales_as_demand_and_is_not_censored():
    out = derive_demand(pd.DataFrame({"units_sold": [0.0, 7.0], "availability": [1.0, 1.0]}))

    assert out["demand"].tolist() == [0.0, 7.0]
    assert not out["censored"].any()


def test_a_week_in_stock_for_most_of_the_time_scales_sales_up_and_is_censored():
    out = derive_demand(pd.DataFrame({"units_sold": [8.0, 3.0], "availability": [0.8, 0.5]}))

    np.testing.assert_allclose(out["demand"], [10.0, 6.0])
    assert out["censored"].all()


@pytest.mark.parametrize("availability", [0.0, 0.2, 0.49])
def test_a_week_mostly_out_of_stock_has_unknown_demand_and_is_censored(availability):
    out = derive_demand(pd.DataFrame({"units_sold": [4.0], "availability": [availability]}))

    assert np.isnan(out.loc[0, "demand"])
    assert out.loc[0, "censored"]


def test_derive_demand_keeps_the_input_and_its_other_columns_unchanged():
    sales = pd.DataFrame({"units_sold": [1.0], "availability": [0.5], "price": [9.99]})
    before = sales.copy()

    out = derive_demand(sales)

    pd.testing.assert_frame_equal(sales, before)
    assert list(out.columns) == ["units_sold", "availability", "price", "censored", "demand"]


@settings(max_examples=50, deadline=None)
@given(
    units=st.lists(st.integers(0, 10_000), min_size=1, max_size=20),
    data=st.data(),
)
def test_demand_is_never_below_sales_and_known_exactly_when_half_the_week_was_in_stock(units, data):
    availability = data.draw(
        st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=len(units), max_size=len(units))
    )
    sales = pd.DataFrame({"units_sold": np.array(units, float), "availability": availability})

    out = derive_demand(sales)

    known = out["demand"].notna()
    assert known.tolist() == (sales["availability"] >= 0.5).tolist()
    assert (out.loc[known, "demand"] >= out.loc[known, "units_sold"]).all()
    assert out["censored"].tolist() == (sales["availability"] < 1.0).tolist()


# ---- build_demand_features ----


def test_the_frame_is_sorted_by_sku_then_week_whatever_the_input_order():
    rows = steady("B", range(5, -1, -1)) + steady("A", range(3, -1, -1))
    rows += [sales_row("A", "M0", w) for w in range(4)]
    history = history_of(rows).sample(frac=1.0, random_state=3)

    frame = build_demand_features(history, ORIGIN, HISTORY_WEEKS, ACTIVE_WEEKS)

    assert frame.index.tolist() == list(range(len(frame)))
    assert frame["sku"].is_monotonic_increasing
    assert all(g["week"].is_monotonic_increasing for _, g in frame.groupby("sku"))
    keys = frame.drop_duplicates("sku")[["article_id", "merchant_id"]].astype(str)
    assert list(keys.itertuples(index=False, name=None)) == [("A", "M0"), ("A", "M1"), ("B", "M1")]
    assert set(BASE_COLUMNS) <= set(frame.columns)


def test_an_active_sku_runs_from_its_first_row_to_the_origin():
    frame = features(steady("A", range(20, 2, -1)))  # last sale three weeks before the origin

    sku = sku_frame(frame, "A")

    assert sku.index.tolist() == [monday(w) for w in range(20, -1, -1)]
    assert sku["active"].all()
    tail = sku.loc[monday(2) :]
    assert not tail["observed"].any() and tail["weight"].eq(0).all()
    assert tail["demand"].eq(10.0).all()


def test_a_discontinued_sku_stops_at_its_last_row():
    rows = steady("OLD", range(40, 19, -1)) + steady("NEW", range(5, -1, -1))

    frame = features(rows)

    old = sku_frame(frame, "OLD")
    assert old.index.min() == monday(40) and old.index.max() == monday(20)
    assert len(old) == 21
    assert not old["active"].any()
    assert sku_frame(frame, "NEW")["active"].all()


def test_a_sku_is_active_exactly_when_it_sold_in_the_last_active_weeks():
    rows = steady("EDGE", range(30, ACTIVE_WEEKS - 2, -1)) + steady("GONE", range(30, 12, -1))

    frame = features(rows)

    assert sku_frame(frame, "EDGE")["active"].all()  # last row 12 weeks back: inside
    assert not sku_frame(frame, "GONE")["active"].any()  # last row 13 weeks back: outside


def seasons(article_id: str, *weeks: range, units: float = 5.0) -> list[dict]:
    """A seasonal SKU: rows only in each of `weeks` (weeks before the origin), none since."""
    return [row for season in weeks for row in steady(article_id, season, units)]


TWO_YEARS_AGO, LAST_YEAR = range(108, 92, -1), range(56, 40, -1)  # two summers, around week 50


def seasonal_features(rows: list[dict], returning_weeks: int = ACTIVE_WEEKS) -> pd.DataFrame:
    """The frame of a three-year window, so that the last two seasons lie inside it."""
    history = history_of(rows + steady("EVERYDAY", range(155, -1, -1)))
    return build_demand_features(
        history, ORIGIN, 156, ACTIVE_WEEKS, returning_weeks=returning_weeks
    )


def test_a_seasonal_sku_that_sold_in_the_coming_weeks_a_year_ago_is_forecast_again():
    frame = seasonal_features(seasons("SUMMER", TWO_YEARS_AGO, LAST_YEAR))

    summer = sku_frame(frame, "SUMMER")
    assert summer["active"].all()
    assert summer.index.max() == monday(0)  # it runs to the origin, like any active SKU
    since = summer.loc[monday(40) + pd.Timedelta(weeks=1) :]
    assert not since["observed"].any() and since["weight"].eq(0).all()
    assert frame.attrs[RETURNING_SKUS] == 1


def test_a_sku_that_stopped_and_never_came_back_stays_discontinued():
    frame = seasonal_features(seasons("STOPPED", range(150, 44, -1)))  # sold a year ago, then not

    assert not sku_frame(frame, "STOPPED")["active"].any()
    assert frame.attrs[RETURNING_SKUS] == 0


def test_a_break_shorter_than_active_weeks_is_not_a_season_coming_back():
    before_break = range(90, 68, -1)  # then no row in weeks 68 .. 57: 12 weeks
    frame = seasonal_features(seasons("SHORT", before_break, LAST_YEAR))

    assert not sku_frame(frame, "SHORT")["active"].any()


def test_a_sku_whose_season_is_not_coming_stays_discontinued():
    frame = seasonal_features(seasons("WINTER", range(86, 72, -1), range(34, 20, -1)))

    assert not sku_frame(frame, "WINTER")["active"].any()


def test_rows_without_sales_last_year_are_no_sign_of_a_returning_season():
    frame = seasonal_features(seasons("SUMMER", TWO_YEARS_AGO, LAST_YEAR, units=0.0))

    assert not sku_frame(frame, "SUMMER")["active"].any()


def test_without_returning_weeks_only_recent_skus_are_forecast():
    rows = seasons("SUMMER", TWO_YEARS_AGO, LAST_YEAR)

    frame = seasonal_features(rows, returning_weeks=0)

    assert not sku_frame(frame, "SUMMER")["active"].any()
    assert frame.attrs[RETURNING_SKUS] == 0


@pytest.mark.parametrize(
    ("weeks_before_origin", "returns"),
    [(53, False), (52, False), (51, True), (45, True), (39, True), (38, False)],
)
def test_the_returning_weeks_are_the_weeks_after_the_origins_week_a_year_earlier(
    weeks_before_origin, returns
):
    one_sale = range(weeks_before_origin, weeks_before_origin - 1, -1)

    frame = seasonal_features(seasons("SEASONAL", TWO_YEARS_AGO, one_sale))

    assert sku_frame(frame, "SEASONAL")["active"].all() == returns


def test_returning_skus_need_a_window_of_a_year_and_a_comeback():
    away, back = np.full(20, np.nan), np.ones(40)  # 20 weeks without a row, then sales
    came_back = np.concatenate([np.ones(5), away, back]).astype("float32")[None, -65:]
    assert returning_skus(came_back, 13, away_weeks=13).all()
    assert not returning_skus(came_back, 0, away_weeks=13).any()
    assert returning_skus(came_back, 13, away_weeks=20).all()  # away 20 weeks: enough
    assert not returning_skus(came_back, 13, away_weeks=21).any()
    assert not returning_skus(came_back[:, -51:], 13, away_weeks=13).any()


def test_a_gap_is_an_unobserved_week_with_zero_weight_filled_from_the_skus_level():
    sales = [10.0, 20.0, 15.0, 30.0]
    rows = [sales_row("A", "M1", w, u) for w, u in zip([9, 8, 7, 6], sales, strict=True)]
    rows += [sales_row("A", "M1", w, 12.0) for w in [3, 2, 1, 0]]  # weeks 5 and 4 are a gap

    sku = sku_frame(features(rows), "A")

    level = pd.Series(sales).ewm(alpha=SMOOTHING, adjust=False).mean().iloc[-1]
    gap = sku.loc[[monday(5), monday(4)]]
    assert not gap["observed"].any()
    assert gap["weight"].eq(0).all()
    assert gap["units_sold"].isna().all()
    np.testing.assert_allclose(gap["demand"], level, rtol=1e-6)
    assert len(sku) == 10


def test_a_full_stockout_week_is_unobserved_with_zero_weight():
    rows = steady("A", range(8, 3, -1)) + steady("A", range(2, -1, -1))
    rows.append(sales_row("A", "M1", 3, units_sold=0.0, availability=0.0))

    week = sku_frame(features(rows), "A").loc[monday(3)]

    assert not week["observed"]
    assert week["weight"] == 0.0
    assert week["demand"] == pytest.approx(10.0)  # the level, not the zero sales


def test_filled_demand_is_never_below_what_was_sold():
    rows = steady("A", range(8, 3, -1)) + steady("A", range(2, -1, -1))
    rows.append(sales_row("A", "M1", 3, units_sold=25.0, availability=0.3))

    week = sku_frame(features(rows), "A").loc[monday(3)]

    assert not week["observed"] and week["weight"] == 0.0
    assert week["demand"] == 25.0  # above the level of 10: sales are a floor for demand


def test_a_partially_stocked_week_is_weighted_by_its_availability():
    rows = steady("A", range(8, 3, -1)) + steady("A", range(2, -1, -1))
    rows.append(sales_row("A", "M1", 3, units_sold=8.0, availability=0.8))

    week = sku_frame(features(rows), "A").loc[monday(3)]

    assert week["observed"]
    assert week["weight"] == pytest.approx(0.8)
    assert week["demand"] == pytest.approx(10.0)
    assert week["units_sold"] == 8.0


def test_a_skus_weeks_before_its_first_observation_take_what_it_sold_not_a_later_value():
    rows = [sales_row("A", "M1", 6, units_sold=1.0, availability=0.0)]
    rows += [sales_row("A", "M1", w, 14.0) for w in range(5, -1, -1)]

    week = sku_frame(features(rows), "A").loc[monday(6)]

    assert not week["observed"] and week["weight"] == 0.0
    assert week["demand"] == 1.0  # what it sold; 14 would leak the first observed target


@settings(max_examples=30, deadline=None)
@given(later=st.lists(st.floats(0, 100), min_size=4, max_size=4))
def test_demand_of_a_week_never_depends_on_later_weeks(later):
    early = [sales_row("A", "M1", 9, units_sold=0.0, availability=0.0)]
    early += [sales_row("A", "M1", w, units_sold=0.0) for w in (8, 7)]
    early += [sales_row("A", "M1", 5, units_sold=3.0, availability=0.2)]  # week 6 is a gap
    tail = [sales_row("A", "M1", w, units_sold=u) for w, u in zip((3, 2, 1, 0), later, strict=True)]
    baseline = [sales_row("A", "M1", w, units_sold=7.0) for w in (3, 2, 1, 0)]

    changed = sku_frame(features(early + tail), "A").loc[: monday(4), "demand"]
    reference = sku_frame(features(early + baseline), "A").loc[: monday(4), "demand"]

    pd.testing.assert_series_equal(changed, reference)


def test_prices_are_carried_forward_over_gaps_and_back_before_the_first_price():
    rows = [
        sales_row("A", "M1", 6, price=np.nan, list_price=np.nan),
        sales_row("A", "M1", 5, price=8.0, list_price=10.0),
        sales_row("A", "M1", 4, price=9.0, list_price=10.0),
        # weeks 3 and 2 are a gap
        sales_row("A", "M1", 1, price=5.0, list_price=10.0),
        sales_row("A", "M1", 0, price=np.nan, list_price=10.0),
    ]

    sku = sku_frame(features(rows), "A")

    assert sku["price"].tolist() == [8.0, 8.0, 9.0, 9.0, 9.0, 5.0, 5.0]
    assert sku["list_price"].eq(10.0).all()
    assert sku["price"].dtype == np.float32


def test_discount_is_one_minus_price_over_list_price():
    rows = [
        sales_row("A", "M1", 2, price=10.0, list_price=10.0),
        sales_row("A", "M1", 1, price=7.5, list_price=10.0),
        sales_row("A", "M1", 0, price=2.5, list_price=10.0),
    ]

    sku = sku_frame(features(rows), "A")

    np.testing.assert_allclose(sku["discount"], [0.0, 0.25, 0.75])
    assert "discount" in dynamic_columns(sku)


def test_extra_numeric_columns_are_dynamic_features_carried_over_gaps():
    rows = [sales_row("A", "M1", 3, promo=1.0), sales_row("A", "M1", 0, promo=0.0)]

    frame = features(rows)

    assert sku_frame(frame, "A")["promo"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert "promo" in dynamic_columns(frame)
    assert "censored" not in frame.columns


def test_a_price_column_without_any_value_is_left_out():
    frame = features([sales_row("A", "M1", w, price=np.nan) for w in range(3)])

    assert "price" not in frame.columns and "discount" not in frame.columns


def test_article_and_merchant_metadata_become_static_categorical_columns():
    rows = [
        sales_row(a, m, w) for a, m in [("A1", "M1"), ("A2", "M2"), ("A9", "M1")] for w in (1, 0)
    ]
    articles = pd.DataFrame(
        {"article_id": ["A1", "A2"], "category": ["shoes", "bags"], "pack_size": [1, 6]}
    )
    merchants = pd.DataFrame({"merchant_id": ["M1", "M2"], "store_format": ["outlet", "brand"]})

    frame = features(rows, articles=articles, merchants=merchants)

    assert static_columns(frame) == [
        "static_category",
        "static_pack_size",
        "static_article_id",
        "static_store_format",
        "static_merchant_id",
    ]
    assert isinstance(frame["static_category"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["static_store_format"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_numeric_dtype(frame["static_pack_size"])
    per_sku = frame.drop_duplicates("sku").set_index("article_id")
    assert per_sku.loc["A1", "static_category"] == "shoes"
    assert per_sku.loc["A2", "static_pack_size"] == 6
    assert per_sku.loc["A2", "static_store_format"] == "brand"
    assert pd.isna(per_sku.loc["A9", "static_category"])  # an article without metadata
    assert per_sku.loc["A9", "static_store_format"] == "outlet"
    assert not {"static_category", "static_store_format"} & set(dynamic_columns(frame))


def test_keys_are_categorical_inputs_only_while_the_metadata_lists_few_of_them():
    few = pd.DataFrame({"article_id": ["A1", "A2"], "category": ["shoes", "bags"]})
    many = pd.DataFrame(
        {"article_id": [f"A{i}" for i in range(MAX_KEY_CATEGORIES + 1)], "category": "shoes"}
    )

    with_key = StaticTable.prepare(few, "article_id").table
    without_key = StaticTable.prepare(many, "article_id").table

    assert isinstance(with_key["article_id"].dtype, pd.CategoricalDtype)
    assert list(with_key["article_id"].cat.categories) == ["A1", "A2"]
    assert "article_id" not in without_key.columns


def test_rows_after_the_origin_are_ignored():
    rows = steady("A", range(6, -1, -1))
    later = [sales_row("A", "M1", -1, 999.0, price=1.0), sales_row("LATE", "M1", -2, 5.0)]

    with_later = features([*rows, *later])

    pd.testing.assert_frame_equal(with_later, features(rows))
    assert with_later["week"].max() == pd.Timestamp(ORIGIN)


def test_rows_before_the_window_are_ignored():
    rows = steady("A", range(HISTORY_WEEKS - 1, -1, -1))
    older = steady("A", range(HISTORY_WEEKS + 5, HISTORY_WEEKS - 1, -1), units=500.0)

    frame = features([*older, *rows])

    assert frame["week"].min() == monday(HISTORY_WEEKS - 1)
    assert len(frame) == HISTORY_WEEKS
    assert frame["units_sold"].eq(10.0).all()


@pytest.mark.parametrize(
    "rows",
    [[], [sales_row("A", "M1", -1)], [sales_row("A", "M1", HISTORY_WEEKS)]],
    ids=["no rows", "only after the origin", "only before the window"],
)
def test_an_empty_window_raises_a_value_error_naming_the_window(rows):
    history = history_of(rows) if rows else history_of([sales_row("A", "M1", 0)]).iloc[:0]

    with pytest.raises(ValueError, match="No sales history in the window") as caught:
        build_demand_features(history, ORIGIN, HISTORY_WEEKS, ACTIVE_WEEKS)

    assert str(monday(HISTORY_WEEKS - 1).date()) in str(caught.value)
    assert str(ORIGIN) in str(caught.value)
    assert "sales_history" in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(
    present=st.lists(st.booleans(), min_size=12, max_size=12).filter(any),
    availability=st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]), min_size=12, max_size=12),
    units=st.lists(st.integers(0, 50), min_size=12, max_size=12),
)
def test_any_pattern_of_rows_gives_one_consistent_row_per_week_of_the_span(
    present, availability, units
):
    weeks = [w for w, keep in zip(range(11, -1, -1), present, strict=True) if keep]
    rows = [sales_row("A", "M1", w, units[w], availability[w]) for w in weeks]

    sku = sku_frame(features(rows), "A")

    # Every row lies in the last ACTIVE_WEEKS weeks: the SKU is active and runs to the origin.
    assert sku["active"].all()
    assert sku.index.tolist() == [monday(w) for w in range(max(weeks), -1, -1)]
    sold = [w for w in weeks if units[w] > 0]
    first_sale = max(sold) if sold else -1  # weeks count back from the origin
    for w in range(max(weeks), -1, -1):
        row = sku.loc[monday(w)]
        has_row = w in weeks
        # Zeros before the first sale are no demand signal (the SKU was not on sale yet).
        leading_zero = bool(sold) and w > first_sale
        known = has_row and availability[w] >= 0.5 and not leading_zero
        assert row["observed"] == known
        expected_weight = (1.0 if availability[w] == 1.0 else availability[w]) if known else 0.0
        assert row["weight"] == pytest.approx(expected_weight)
        assert np.isfinite(row["demand"])
        assert row["demand"] >= (units[w] if has_row else 0)
        if known:
            assert row["demand"] == pytest.approx(units[w] / availability[w])


def test_a_generated_panel_gives_a_complete_frame_with_bounded_weights():
    panel = generate_panel(150, 40, ORIGIN, seed=5)

    frame = build_demand_features(
        panel_history(panel), ORIGIN, 30, ACTIVE_WEEKS, panel.articles, panel.merchants
    )

    assert frame["week"].min() == monday(29)
    assert frame["demand"].notna().all() and (frame["demand"] >= 0).all()
    assert frame["weight"].between(0.0, 1.0).all()
    assert (frame.loc[~frame["observed"], "weight"] == 0).all()
    assert frame[["price", "list_price", "discount", "promo"]].notna().all().all()
    assert frame["discount"].between(0.0, 1.0).all()
    assert static_columns(frame) == [
        "static_category",
        "static_brand",
        "static_colour",
        "static_article_id",
        "static_store_format",
        "static_merchant_id",
    ]
    live_at_origin = panel.live[:, -1].sum()
    active = frame.loc[frame["active"]].drop_duplicates("sku")
    assert len(active) >= live_at_origin
    assert (frame.loc[frame["active"]].groupby("sku")["week"].max() == pd.Timestamp(ORIGIN)).all()


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(st.sampled_from(["A1", "A2", "A3", "B7", "C0"]), min_size=1, max_size=30),
    known=st.sets(st.sampled_from(["A1", "A2", "A3", "B7", "C0", "Z9"])),
)
def test_skus_without_metadata_are_counted_alike_from_categories_and_from_strings(keys, known):
    metadata = StaticTable.prepare(pd.DataFrame({"article_id": sorted(known)}), "article_id")
    expected = sum(key not in known for key in keys)

    as_text = _skus_without(pd.DataFrame({"article_id": keys}), metadata, "article_id")
    as_category = _skus_without(
        pd.DataFrame({"article_id": pd.Categorical(keys)}), metadata, "article_id"
    )

    assert as_text == as_category == expected


@settings(max_examples=100, deadline=None)
@given(
    cells=st.lists(
        st.lists(st.one_of(st.none(), st.floats(0, 100, width=32)), min_size=6, max_size=6),
        min_size=1,
        max_size=8,
    )
)
def test_prices_carry_forward_over_gaps_and_back_before_the_first_value_like_pandas(cells):
    values = np.array([[np.nan if v is None else v for v in row] for row in cells], dtype="float32")

    carried = _carry_over_gaps(values)

    expected = pd.DataFrame(values.T).ffill().bfill().to_numpy(dtype="float32").T
    np.testing.assert_array_equal(carried, expected)
    assert carried.dtype == np.float32
