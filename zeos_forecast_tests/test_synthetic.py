"""Tests of the synthetic demand panel generator: contract, invariants and realism."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zeos_forecast.datasets.synthetic import (
    CHUNK_SKUS,
    SyntheticPanel,
    generate_panel,
    stream_panel,
)

LAST_WEEK = date(2026, 11, 16)  # a Monday
ARRAYS = ("units_sold", "true_demand", "price", "list_price", "availability", "promo", "live")


@pytest.fixture(scope="module")
def panel() -> SyntheticPanel:
    return generate_panel(4000, 156, LAST_WEEK, seed=11)


def test_same_seed_gives_the_same_panel():
    a, b = (generate_panel(300, 60, LAST_WEEK, seed=3) for _ in range(2))
    for name in (*ARRAYS, "article_id", "merchant_id"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_index_equal(a.weeks, b.weeks)
    pd.testing.assert_frame_equal(a.articles, b.articles)
    pd.testing.assert_frame_equal(a.merchants, b.merchants)
    other = generate_panel(300, 60, LAST_WEEK, seed=4)
    assert not np.array_equal(a.true_demand, other.true_demand)


def test_arrays_have_the_documented_shapes_and_dtypes(panel):
    for name in ARRAYS:
        assert getattr(panel, name).shape == (4000, 156)
    for name in ("units_sold", "true_demand", "price", "list_price", "availability"):
        assert getattr(panel, name).dtype == np.float32
    assert panel.promo.dtype == np.int8
    assert panel.live.dtype == np.bool_
    assert panel.article_id.shape == panel.merchant_id.shape == (4000,)


def test_sku_keys_are_unique(panel):
    keys = pd.DataFrame({"a": panel.article_id, "m": panel.merchant_id})
    assert not keys.duplicated().any()
    merchants_per_article = keys.groupby("a")["m"].nunique()
    assert set(merchants_per_article.unique()) == {1, 2, 3}


def test_articles_nest_brands_within_categories_and_merchants_have_store_formats(panel):
    articles, merchants = panel.articles, panel.merchants
    assert list(articles.columns) == ["article_id", "category", "brand", "colour"]
    assert articles["article_id"].is_unique
    assert set(panel.article_id) == set(articles["article_id"])
    assert articles["category"].nunique() == 12
    assert (articles.groupby("brand")["category"].nunique() == 1).all()
    assert articles["colour"].nunique() > 5
    assert list(merchants.columns) == ["merchant_id", "store_format"]
    assert len(merchants) == 50 and merchants["merchant_id"].is_unique
    assert set(panel.merchant_id) <= set(merchants["merchant_id"])
    assert merchants["store_format"].nunique() > 1


def test_weeks_are_consecutive_mondays_ending_at_last_week(panel):
    weeks = panel.weeks
    assert len(weeks) == 156
    assert weeks[-1] == pd.Timestamp(LAST_WEEK)
    assert (weeks.dayofweek == 0).all()
    assert (np.diff(weeks.to_numpy()) == np.timedelta64(7, "D")).all()
    assert weeks.tz is None


def test_non_monday_last_week_is_rejected():
    with pytest.raises(ValueError, match="Monday"):
        generate_panel(10, 10, LAST_WEEK + timedelta(days=1))


def test_stockout_weeks_sell_at_most_what_availability_allows(panel):
    live, availability = panel.live, panel.availability
    assert (panel.units_sold <= panel.true_demand).all()
    assert (panel.units_sold[live & (availability == 0)] == 0).all()
    in_stock = live & (availability == 1)
    np.testing.assert_array_equal(panel.units_sold[in_stock], panel.true_demand[in_stock])
    stockout_share = (availability[live] < 1).mean()
    assert 0.01 < stockout_share < 0.2
    assert (availability[live] == 0).any()
    partial = live & (availability > 0) & (availability < 1) & (panel.true_demand >= 10)
    assert panel.units_sold[partial].sum() < panel.true_demand[partial].sum()


def test_promotions_lower_price_and_raise_demand(panel):
    promo, live = panel.promo.astype(bool), panel.live
    assert 0.02 < promo[live].mean() < 0.2
    ratio = panel.price[promo] / panel.list_price[promo]
    assert ratio.min() >= 0.49 and ratio.max() <= 0.91  # 10-50 % off, rounded to cents
    np.testing.assert_array_equal(panel.price[live & ~promo], panel.list_price[live & ~promo])
    # Compare each SKU with itself: mean demand in promo weeks vs its other live weeks.
    regular = live & ~promo
    promo_mean = (panel.true_demand * promo).sum(1) / promo.sum(1).clip(1)
    regular_mean = (panel.true_demand * regular).sum(1) / regular.sum(1).clip(1)
    both = (promo.sum(1) > 0) & (regular.sum(1) > 0)
    assert promo_mean[both].sum() > 1.5 * regular_mean[both].sum()


def test_many_skus_are_intermittent(panel):
    live = panel.live
    zero = (panel.units_sold == 0) & live
    assert 0.3 < zero.sum() / live.sum() < 0.8
    zero_share_per_sku = zero.sum(1) / live.sum(1)
    assert (zero_share_per_sku > 0.5).mean() > 0.2
    assert (zero_share_per_sku < 0.2).mean() > 0.05  # and there are fast movers too


def test_demand_is_overdispersed_counts_spanning_fast_movers_and_long_tail(panel):
    demand = panel.true_demand
    np.testing.assert_array_equal(demand, np.round(demand))
    np.testing.assert_array_equal(panel.units_sold, np.round(panel.units_sold))
    mean = np.nanmean(np.where(panel.live, demand, np.nan), axis=1)
    var = np.nanvar(np.where(panel.live, demand, np.nan), axis=1)
    busy = mean > 1
    assert np.median(var[busy] / mean[busy]) > 1.5  # negative binomial, not Poisson/Gaussian
    assert np.quantile(mean, 0.99) > 100 * max(np.quantile(mean, 0.1), 0.01)


def test_some_skus_launch_and_some_are_discontinued_during_the_history(panel):
    live = panel.live
    launched, discontinued = ~live[:, 0], ~live[:, -1]
    assert 0.12 < launched.mean() < 0.28
    assert 0.05 < discontinued.mean() < 0.15
    assert live.any(axis=1).all()
    spans = np.diff(live.astype(np.int8), axis=1)
    assert ((spans == 1).sum(1) <= 1).all() and ((spans == -1).sum(1) <= 1).all()  # contiguous
    dead = ~live
    assert (panel.true_demand[dead] == 0).all() and (panel.units_sold[dead] == 0).all()
    assert (panel.promo[dead] == 0).all() and (panel.availability[dead] == 0).all()


def test_demand_has_yearly_seasonality(panel):
    log_total = np.log(panel.true_demand.sum(axis=0))
    x = np.arange(len(log_total))
    detrended = log_total - np.polyval(np.polyfit(x, log_total, 1), x)
    lag52 = np.corrcoef(detrended[:-52], detrended[52:])[0, 1]
    lag26 = np.corrcoef(detrended[:-26], detrended[26:])[0, 1]
    assert lag52 > 0.5
    assert lag52 > lag26


def test_week_frame_lists_only_live_skus_with_contract_columns(panel):
    t = 100
    frame = panel.week_frame(t)
    assert list(frame.columns) == [
        "article_id",
        "merchant_id",
        "week",
        "units_sold",
        "price",
        "list_price",
        "availability",
        "promo",
    ]
    assert len(frame) == panel.live[:, t].sum() < len(panel.article_id)
    assert frame["week"].dtype == "datetime64[ns]"
    assert (frame["week"] == panel.weeks[t]).all()
    assert isinstance(frame["article_id"].iloc[0], str)
    assert isinstance(frame["merchant_id"].iloc[0], str)
    assert not frame[["article_id", "merchant_id"]].duplicated().any()
    rows = np.flatnonzero(panel.live[:, t])
    np.testing.assert_array_equal(frame["units_sold"], panel.units_sold[rows, t])
    np.testing.assert_array_equal(frame["article_id"], panel.article_id[rows])
    assert len(panel.week_frame(-1)) == panel.live[:, -1].sum()


@settings(max_examples=25, deadline=None)
@given(
    n_skus=st.integers(1, 300),
    n_weeks=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
)
def test_panel_invariants_hold_for_any_size_and_seed(n_skus, n_weeks, seed):
    p = generate_panel(n_skus, n_weeks, LAST_WEEK, seed=seed)
    for name in ARRAYS:
        assert getattr(p, name).shape == (n_skus, n_weeks)
    for name in ("units_sold", "true_demand", "price", "list_price", "availability"):
        assert np.isfinite(getattr(p, name)).all()
    assert (p.units_sold >= 0).all() and (p.units_sold <= p.true_demand).all()
    assert (p.price > 0).all() and (p.price <= p.list_price).all()
    assert ((p.availability >= 0) & (p.availability <= 1)).all()
    assert set(np.unique(p.promo)) <= {0, 1}
    assert (p.price[p.promo == 1] < p.list_price[p.promo == 1]).all()
    assert p.live.any(axis=1).all()
    assert len(set(zip(p.article_id, p.merchant_id, strict=True))) == n_skus
    assert len(p.weeks) == n_weeks and p.weeks[-1] == pd.Timestamp(LAST_WEEK)


def test_a_streamed_panel_yields_the_arrays_of_generate_panel_chunk_by_chunk():
    n_skus = 2 * CHUNK_SKUS + 1000  # three chunks, the last one partial
    whole = generate_panel(n_skus, 20, LAST_WEEK, seed=7)

    stream = stream_panel(n_skus, 20, LAST_WEEK, seed=7, chunk_skus=CHUNK_SKUS)
    chunks = list(stream)

    assert len(stream) == len(chunks) == 3
    assert [len(c.article_id) for c in chunks] == [CHUNK_SKUS, CHUNK_SKUS, 1000]
    for name in (*ARRAYS, "article_id", "merchant_id"):
        joined = np.concatenate([getattr(c, name) for c in chunks])
        np.testing.assert_array_equal(joined, getattr(whole, name), err_msg=name)
    for chunk in chunks:
        pd.testing.assert_index_equal(chunk.weeks, whole.weeks)
        pd.testing.assert_frame_equal(chunk.articles, whole.articles)
        pd.testing.assert_frame_equal(chunk.merchants, whole.merchants)


def test_a_streamed_panel_rounds_its_chunks_up_to_whole_simulation_blocks():
    stream = stream_panel(3 * CHUNK_SKUS, 5, LAST_WEEK, chunk_skus=CHUNK_SKUS + 1)
    assert stream.chunk_skus == 2 * CHUNK_SKUS
    assert len(stream) == 2
