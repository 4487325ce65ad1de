"""The importers of Dominick's orange juice and VN2: counts, mapping, contract, metadata, CLI.

Each dataset is imported into a lake once per module: OJ through `import_dominicks`, VN2 through
the command line. The source files are read from the shared data folder, never copied.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zeos_forecast.cli import main
from zeos_forecast.core.contract import (
    validate_metadata,
    validate_plan_drop,
    validate_sales_drop,
)
from zeos_forecast.datasets.dominicks import (
    dominicks_frames,
    dominicks_mondays,
    import_dominicks,
    read_dominicks,
)
from zeos_forecast.datasets.importing import ImportSummary, LandingFrames, default_source
from zeos_forecast.datasets.vn2 import read_vn2, vn2_frames
from zeos_forecast.storage import LANDING_ARTICLES, LANDING_MERCHANTS, Lake

OJ_ROWS, OJ_SKUS, OJ_WEEKS = 84_183, 913, 96
OJ_FIRST, OJ_LAST = dt.date(1990, 6, 11), dt.date(1992, 4, 6)
VN2_ROWS, VN2_SKUS, VN2_WEEKS = 94_043, 599, 157
VN2_FIRST, VN2_LAST = dt.date(2021, 4, 12), dt.date(2024, 4, 8)
VN2_STOCKOUTS = 10_517
KEYS = ["article_id", "merchant_id"]


@pytest.fixture(scope="module")
def oj_source(shared_data) -> Path:
    return shared_data / "dominicks_oj"


@pytest.fixture(scope="module")
def vn2_source(shared_data) -> Path:
    return shared_data / "vn2"


@pytest.fixture(scope="module")
def oj_yx(oj_source) -> pd.DataFrame:
    return pd.read_csv(oj_source / "yx_weeks_40_135.csv.gz", float_precision="round_trip")


@pytest.fixture(scope="module")
def oj_frames(oj_source) -> LandingFrames:
    return read_dominicks(oj_source)


@pytest.fixture(scope="module")
def vn2_frames_(vn2_source) -> LandingFrames:
    return read_vn2(vn2_source)


@pytest.fixture(scope="module")
def oj_import(tmp_path_factory, oj_source) -> tuple[Lake, ImportSummary, list[str]]:
    """OJ imported once through `import_dominicks`: (lake, summary, progress messages)."""
    messages: list[str] = []
    lake = Lake(str(tmp_path_factory.mktemp("oj") / "lake"))
    return lake, import_dominicks(oj_source, lake, report=messages.append), messages


@pytest.fixture(scope="module")
def vn2_cli(tmp_path_factory, vn2_source) -> tuple[Lake, int, str]:
    """VN2 imported once through `zeos-forecast import vn2`: (lake, exit code, stdout)."""
    root = tmp_path_factory.mktemp("vn2") / "lake"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["import", "vn2", "--src", str(vn2_source), "--lake", str(root)])
    return Lake(str(root)), code, out.getvalue()


def validated_drops(lake: Lake) -> dict[dt.date, pd.DataFrame]:
    """Every sales drop of `lake`, read back and passed through the landing contract."""
    return {
        week: validate_sales_drop([(f.path, f.frame) for f in lake.read_sales_drop(week)], week)
        for week in sorted(lake.sales_drop_weeks())
    }


# ---- Dominick's orange juice ----


def test_oj_summary_counts_rows_skus_and_weeks(oj_import):
    lake, summary, messages = oj_import
    assert (summary.rows, summary.skus, summary.weeks) == (OJ_ROWS, OJ_SKUS, OJ_WEEKS)
    assert (summary.first_week, summary.last_week) == (OJ_FIRST, OJ_LAST)
    assert (summary.plan_weeks, summary.articles, summary.merchants) == (OJ_WEEKS, 11, 83)
    assert len(lake.sales_drop_weeks()) == len(lake.plan_weeks()) == OJ_WEEKS
    assert any("writing plan drops" in m for m in messages)
    assert any(f"{OJ_WEEKS}/{OJ_WEEKS} weeks" in m for m in messages)


def test_oj_weeks_map_to_the_monday_before_their_thursday():
    mondays = dominicks_mondays(pd.Series([1, 40, 135]))
    assert [d.date() for d in mondays] == [dt.date(1989, 9, 11), OJ_FIRST, OJ_LAST]
    assert all(d.dayofweek == 0 for d in mondays)
    # Week 1 starts on Thursday 1989-09-14, three days after its Monday.
    assert mondays[0] + pd.Timedelta(days=3) == pd.Timestamp(1989, 9, 14)


def test_oj_every_sales_drop_passes_the_contract(oj_import):
    lake, _, _ = oj_import
    drops = validated_drops(lake)
    assert len(drops) == OJ_WEEKS
    assert sum(len(d) for d in drops.values()) == OJ_ROWS
    combined = pd.concat(drops.values(), ignore_index=True)
    assert {"deal", "feat", "relative_price"} <= set(combined.columns)
    assert not {"profit", "constant", "price1", "logmove"} & set(combined.columns)
    assert (combined["availability"] == 1.0).all()  # no stock data: fully available
    assert (combined["price"] > 0).all() and combined["list_price"].isna().all()


def test_oj_units_are_exp_logmove_rounded(oj_frames, oj_yx):
    source = oj_yx.assign(
        article_id=oj_yx["brand"].astype(str),
        merchant_id=oj_yx["store"].astype(str),
        week=dominicks_mondays(oj_yx["week"]),
    )
    joined = oj_frames.sales.merge(source, on=[*KEYS, "week"], validate="one_to_one")
    assert len(joined) == OJ_ROWS
    units = np.exp(joined["logmove"])
    assert (joined["units_sold"] == units.round()).all()
    assert (units - joined["units_sold"]).abs().max() < 1e-3
    assert (joined["units_sold"] >= 1).all()
    own = joined.apply(lambda row: row[f"price{row['brand']}"], axis=1)
    assert (joined["price"] == own).all()
    cross = joined[[f"price{b}" for b in range(1, 12)]].mean(axis=1)
    np.testing.assert_allclose(joined["relative_price"], own / cross, rtol=1e-12)


def test_oj_gaps_stay_missing_rows(oj_frames, oj_yx):
    sales = oj_frames.sales
    assert sales.groupby(KEYS).ngroups == OJ_SKUS and sales["week"].nunique() == OJ_WEEKS
    grid = OJ_SKUS * OJ_WEEKS
    assert grid - len(sales) == grid - len(oj_yx) == 3_465
    assert not sales.duplicated([*KEYS, "week"]).any()
    assert (sales["units_sold"] > 0).all()  # no zeros written for missing weeks


def test_oj_plans_carry_known_inputs_for_every_sales_row(oj_import, oj_frames):
    lake, _, _ = oj_import
    plans = oj_frames.plans
    assert list(plans.columns) == [*KEYS, "week", "price", "relative_price", "deal", "feat"]
    pd.testing.assert_frame_equal(plans, oj_frames.sales[plans.columns])
    written = {
        week: validate_plan_drop([(f.path, f.frame) for f in lake.read_plan_drop(week)], week)
        for week in sorted(lake.plan_weeks())
    }
    assert len(written) == OJ_WEEKS and sum(len(p) for p in written.values()) == OJ_ROWS
    last = written[OJ_LAST]
    assert "units_sold" not in last.columns and (last["price"] > 0).all()
    assert len(last) == (oj_frames.sales["week"] == pd.Timestamp(OJ_LAST)).sum()


def test_oj_metadata_keys_are_unique_and_cover_the_sales(oj_import, oj_frames):
    lake, _, _ = oj_import
    articles = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_ARTICLES)], "article_id"
    )
    merchants = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_MERCHANTS)], "merchant_id"
    )
    assert set(articles["article_id"]) == set(oj_frames.sales["article_id"])
    assert set(merchants["merchant_id"]) == set(oj_frames.sales["merchant_id"])
    by_id = articles.set_index("article_id")
    assert tuple(by_id.loc["1"]) == ("Tropicana Premium", 64, "Tropicana")
    assert tuple(by_id.loc["11"]) == ("Dominick's", 128, "Dominick's")
    assert set(by_id["size_oz"]) == {64, 96, 128}
    demographics = [c for c in merchants.columns if c != "merchant_id"]
    assert "income" in demographics and len(demographics) == 11
    assert all(pd.api.types.is_float_dtype(merchants[c]) for c in demographics)


def test_oj_rejects_units_that_are_not_whole(oj_yx, oj_source):
    storedemo = pd.read_csv(oj_source / "storedemo.csv.gz")
    broken = oj_yx.head(20).copy()
    broken.loc[3, "logmove"] = np.log(10.5)
    with pytest.raises(ValueError, match=r"1 rows have exp\(logmove\)"):
        dominicks_frames(broken, storedemo)


# ---- VN2 ----


def test_vn2_cli_imports_and_prints_the_summary(vn2_cli):
    lake, code, out = vn2_cli
    assert code == 0
    assert f"{VN2_ROWS:,} sales rows, {VN2_SKUS} SKUs" in out
    assert f"{VN2_WEEKS} weeks ({VN2_FIRST}..{VN2_LAST})" in out
    assert "no plan drops" in out and lake.uri_of("landing") in out
    assert len(lake.sales_drop_weeks()) == VN2_WEEKS and lake.plan_weeks() == {}


def test_vn2_every_sales_drop_passes_the_contract(vn2_cli):
    lake, _, _ = vn2_cli
    drops = validated_drops(lake)
    assert (min(drops), max(drops), len(drops)) == (VN2_FIRST, VN2_LAST, VN2_WEEKS)
    combined = pd.concat(drops.values(), ignore_index=True)
    assert len(combined) == VN2_ROWS and combined.groupby(KEYS).ngroups == VN2_SKUS
    assert set(combined["availability"]) == {0.0, 1.0}
    assert combined["price"].isna().all()


def test_vn2_stockouts_map_to_availability_zero(vn2_frames_, vn2_source):
    sales = vn2_frames_.sales
    out = sales["availability"] == 0.0
    assert out.sum() == VN2_STOCKOUTS
    assert (sales.loc[out, "units_sold"] == 0).all()
    source = pd.read_parquet(vn2_source / "sales_week0.parquet")
    assert (~source["in_stock"]).sum() == VN2_STOCKOUTS
    assert sales["units_sold"].sum() == pytest.approx(float(source["sales"].sum()))


def test_vn2_metadata_keys_are_unique_and_cover_the_sales(vn2_cli, vn2_frames_):
    lake, _, _ = vn2_cli
    articles = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_ARTICLES)], "article_id"
    )
    merchants = validate_metadata(
        [(f.path, f.frame) for f in lake.read_metadata(LANDING_MERCHANTS)], "merchant_id"
    )
    assert list(articles.columns) == [
        "article_id",
        "product_group",
        "division",
        "department",
        "department_group",
    ]
    assert list(merchants.columns) == ["merchant_id", "store_format", "format"]
    assert (len(articles), len(merchants)) == (297, 67)
    assert set(articles["article_id"]) == set(vn2_frames_.sales["article_id"])
    assert set(merchants["merchant_id"]) == set(vn2_frames_.sales["merchant_id"])
    assert all(pd.api.types.is_string_dtype(articles[c]) for c in articles.columns)


def test_vn2_rejects_a_store_with_two_formats(vn2_source):
    sales = pd.read_parquet(vn2_source / "sales_week0.parquet")
    master = pd.read_csv(vn2_source / "week0_master.csv.gz")
    store = master["Store"].value_counts().index[0]  # a store listed on several rows
    master.loc[master.index[master["Store"] == store][0], "Format"] = -1
    with pytest.raises(ValueError, match=r"1 values of Store .*\['Format'\].*e\.g\. Store"):
        vn2_frames(sales, master)


# ---- sources and the command line ----


def test_a_wrong_src_exits_1_naming_the_missing_file(tmp_path, capsys):
    code = main(["import", "oj", "--src", str(tmp_path / "nowhere"), "--lake", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "zeos-forecast import:" in err
    assert str(tmp_path / "nowhere" / "yx_weeks_40_135.csv.gz") in err and "--src" in err
    assert not (tmp_path / "landing").exists()


def test_default_source_follows_zeos_shared_data(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEOS_SHARED_DATA", str(tmp_path))
    assert default_source("vn2") == tmp_path / "vn2"
    monkeypatch.delenv("ZEOS_SHARED_DATA")
    assert default_source("dominicks_oj") == Path("..") / "shared" / "data" / "dominicks_oj"
