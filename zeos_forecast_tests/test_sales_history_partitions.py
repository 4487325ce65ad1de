"""What `sales_history` writes: the contract's rows with demand, sorted by SKU, in small row groups.

Readers of a SKU range of the history skip row groups by their statistics, which only works on
files sorted by SKU. The content must be what the pandas contract and `derive_demand` make of
the drop, whether Arrow vouched for it (parquet) or pandas read it (CSV).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import weekly_graph

from zeos_forecast.core.contract import validate_sales_drop
from zeos_forecast.core.demand import derive_demand
from zeos_forecast.pipeline import sales_history as history
from zeos_forecast.pipeline.resources import LakeResource
from zeos_forecast.storage import LANDING_SALES, Lake

WEEK = dt.date(2025, 6, 2)
WEEKS = [WEEK - dt.timedelta(weeks=1), WEEK]
SKUS = 60
SMALL_ROW_GROUPS = 16  # rows per group in these tests, so that a week has several


@pytest.fixture(scope="module")
def landing(landing_factory) -> Path:
    return landing_factory(SKUS, len(WEEKS), WEEK, seed=5)


def run_range(root: Path, weeks: list[dt.date], **options) -> dg.ExecuteInProcessResult:
    """`sales_history` for `weeks[0] .. weeks[-1]` in one run, as a range backfill runs."""
    return dg.materialize(
        [weekly_graph.sales_history],
        resources={"lake": LakeResource(root=str(root))},
        instance=dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": weeks[0].isoformat(),
            "dagster/asset_partition_range_end": weeks[-1].isoformat(),
        },
        **options,
    )


def materialize(root: Path, monkeypatch) -> None:
    monkeypatch.setattr(history, "HISTORY_ROW_GROUP_ROWS", SMALL_ROW_GROUPS)
    assert run_range(root, WEEKS).success


def written(root: Path, week: dt.date) -> pq.ParquetFile:
    return pq.ParquetFile(root / "sales_history" / f"week={week}" / "part-0.parquet")


def as_the_pandas_pipeline_wrote_it(root: Path, week: dt.date) -> pd.DataFrame:
    files = [(f.path, f.frame) for f in Lake(str(root)).read_sales_drop(week)]
    frame = derive_demand(validate_sales_drop(files, week)).drop(columns="week")
    return frame.sort_values(["article_id", "merchant_id"], ignore_index=True)


def test_each_week_is_written_sorted_by_sku_in_row_groups_of_bounded_size(
    landing, lake_copy, monkeypatch
):
    root = lake_copy(landing)

    materialize(root, monkeypatch)

    for week in WEEKS:
        parquet = written(root, week)
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        assert len(sizes) > 1 and max(sizes) <= SMALL_ROW_GROUPS
        keys = parquet.read(columns=["article_id", "merchant_id"]).to_pylist()
        as_tuples = [(k["article_id"], k["merchant_id"]) for k in keys]
        assert as_tuples == sorted(as_tuples)


def as_csv_drops(root: Path) -> Path:
    """The lake with every week's drop rewritten as CSV (which pandas reads and validates)."""
    for week in WEEKS:
        folder = root / LANDING_SALES / f"week={week}"
        frame = pd.read_parquet(folder / "part-0.parquet")
        (folder / "part-0.parquet").unlink()
        frame.to_csv(folder / "part-0.csv", index=False)
        (folder / "_SUCCESS").touch()  # files first, the marker last
    return root


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_week_holds_what_the_pandas_contract_and_derive_demand_make_of_its_drop(
    fmt, landing, lake_copy, monkeypatch
):
    root = lake_copy(landing) if fmt == "parquet" else as_csv_drops(lake_copy(landing))

    materialize(root, monkeypatch)

    for week in WEEKS:
        pd.testing.assert_frame_equal(
            written(root, week).read().to_pandas(), as_the_pandas_pipeline_wrote_it(root, week)
        )


def test_a_bad_week_in_a_range_fails_the_run_naming_it_after_every_week_before_it_is_written(
    landing_factory,
):
    # Six weeks read two at a time: the fourth is bad, the fifth and sixth are good.
    last = WEEK + dt.timedelta(weeks=4)
    weeks = [last - dt.timedelta(weeks=n) for n in range(5, -1, -1)]
    root = landing_factory(SKUS, len(weeks), last, seed=7)
    bad = weeks[3]
    [drop_file] = (root / "landing" / "sales" / f"week={bad}").glob("*.parquet")
    frame = pd.read_parquet(drop_file)
    frame.loc[frame.index[:3], "units_sold"] = -1.0
    frame.to_parquet(drop_file, index=False)

    result = run_range(root, weeks, raise_on_error=False)

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert drop_file.name in message and "units_sold" in message
    assert [(root / "sales_history" / f"week={w}").is_dir() for w in weeks] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
