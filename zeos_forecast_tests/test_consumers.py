"""A downstream team reads the forecast tables with DuckDB and pyarrow, and none of our code.

The lake is produced by the pipeline (two published origin weeks); every read below is plain
DuckDB SQL or `pyarrow.dataset`, exactly as a consumer would write it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from weekly_graph import (
    demand_features,
    demand_forecast,
    demand_forecast_checks,
    published_forecast,
    sales_history,
)

from zeos_forecast.pipeline.resources import ComputeResource, LakeResource

WEEKS = [dt.date(2025, 5, 26), dt.date(2025, 6, 2)]  # two origin weeks, both published
SKUS, HISTORY_WEEKS = 100, 30
FORECAST_COLUMNS = [
    "article_id",
    "merchant_id",
    "week",
    "horizon",
    "forecast",
    "q10",
    "q50",
    "q90",
    "run_id",
]
DUCKDB_TYPES = {
    "article_id": "VARCHAR",
    "merchant_id": "VARCHAR",
    "week": "DATE",
    "horizon": "SMALLINT",
    "forecast": "FLOAT",
    "q10": "FLOAT",
    "q50": "FLOAT",
    "q90": "FLOAT",
    "run_id": "VARCHAR",
    "forecast_week": "DATE",
}


@pytest.fixture(scope="module")
def lake(landing_factory, tmp_path_factory, fast_forecast) -> Path:
    """A lake holding the forecast and the published forecast of both WEEKS."""
    root = tmp_path_factory.mktemp("consumers") / "lake"
    shutil.copytree(landing_factory(SKUS, HISTORY_WEEKS + 2, WEEKS[-1], seed=3), root)
    assets = [sales_history, demand_features, demand_forecast, published_forecast]
    resources = {"lake": LakeResource(root=str(root)), "compute": ComputeResource()}
    first = WEEKS[0] - dt.timedelta(weeks=HISTORY_WEEKS - 1)
    config = {
        "ops": {
            "demand_features": {"config": {"history_weeks": HISTORY_WEEKS}},
            "demand_forecast": {"config": fast_forecast},
        }
    }
    with dg.instance_for_test() as instance:
        history = dg.materialize(
            assets,
            selection=[sales_history],
            resources=resources,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": WEEKS[-1].isoformat(),
            },
        )
        assert history.success
        for week in WEEKS:
            result = dg.materialize(
                [*assets, demand_forecast_checks],
                selection=[
                    demand_features,
                    demand_forecast,
                    demand_forecast_checks,
                    published_forecast,
                ],
                partition_key=week.isoformat(),
                resources=resources,
                instance=instance,
                run_config=config,
            )
            assert result.success
    return root


def describe(connection: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """Column name -> DuckDB type of a query's result."""
    rows = connection.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
    return {name: kind for name, kind, *_ in rows}


@pytest.mark.parametrize("dataset", ["demand_forecast", "published_forecast"])
def test_duckdb_reads_the_table_as_a_hive_dataset_with_the_documented_columns(
    lake, dataset, fast_forecast
):
    horizon = fast_forecast["horizon"]
    source = f"read_parquet('{lake}/{dataset}/*/*.parquet', hive_partitioning = true)"
    with duckdb.connect() as connection:
        columns = describe(connection, source)
        weeks = connection.sql(
            f"SELECT forecast_week, count(*), count(DISTINCT (article_id, merchant_id)), "
            f"min(horizon), max(horizon) FROM {source} GROUP BY forecast_week ORDER BY 1"
        ).fetchall()
    assert columns == DUCKDB_TYPES
    assert [row[0] for row in weeks] == WEEKS
    for _, rows, skus, first, last in weeks:
        assert (first, last) == (1, horizon)
        assert rows == skus * horizon


def test_duckdb_target_weeks_follow_the_origin_week(lake):
    source = f"read_parquet('{lake}/published_forecast/*/*.parquet', hive_partitioning = true)"
    with duckdb.connect() as connection:
        [(wrong,)] = connection.sql(
            f"SELECT count(*) FROM {source} WHERE week <> forecast_week + 7 * horizon"
        ).fetchall()
    assert wrong == 0


def test_duckdb_reads_the_latest_file_as_the_newest_published_week(lake):
    history = f"read_parquet('{lake}/published_forecast/*/*.parquet', hive_partitioning = true)"
    latest = f"read_parquet('{lake}/published_forecast_latest/*.parquet')"
    with duckdb.connect() as connection:
        weeks = connection.sql(f"SELECT DISTINCT forecast_week FROM {latest}").fetchall()
        [(only_in_latest, only_in_history)] = connection.sql(
            f"""
            WITH newest AS (
                     SELECT * FROM {history}
                     WHERE forecast_week = (SELECT max(forecast_week) FROM {history})
                 ),
                 latest AS (SELECT * FROM {latest})
            SELECT (SELECT count(*) FROM (SELECT * FROM latest EXCEPT ALL SELECT * FROM newest)),
                   (SELECT count(*) FROM (SELECT * FROM newest EXCEPT ALL SELECT * FROM latest))
            """
        ).fetchall()
    assert weeks == [(WEEKS[-1],)]
    assert only_in_latest == only_in_history == 0


@pytest.mark.parametrize("dataset", ["demand_forecast", "published_forecast"])
def test_pyarrow_reads_the_table_as_a_hive_dataset_with_the_documented_columns(lake, dataset):
    table = pads.dataset(lake / dataset, format="parquet", partitioning="hive").to_table()
    assert table.column_names == [*FORECAST_COLUMNS, "forecast_week"]
    assert table.schema.field("week").type == pa.date32()
    assert table.schema.field("horizon").type == pa.int16()
    assert sorted(set(table.column("forecast_week").to_pylist())) == [w.isoformat() for w in WEEKS]


def test_pyarrow_filters_one_origin_week_by_its_partition_folder(lake):
    dataset = pads.dataset(lake / "published_forecast", format="parquet", partitioning="hive")
    fragments = list(
        dataset.get_fragments(filter=pads.field("forecast_week") == WEEKS[0].isoformat())
    )
    assert [Path(f.path).parent.name for f in fragments] == [f"forecast_week={WEEKS[0]}"]
    week = dataset.to_table(filter=pads.field("forecast_week") == WEEKS[0].isoformat())
    assert week.num_rows == fragments[0].count_rows() > 0


def test_pyarrow_reads_the_latest_file_with_its_origin_week(lake):
    latest = pads.dataset(lake / "published_forecast_latest", format="parquet").to_table()
    assert latest.column_names == [*FORECAST_COLUMNS, "forecast_week"]
    assert set(latest.column("forecast_week").to_pylist()) == {WEEKS[-1]}
