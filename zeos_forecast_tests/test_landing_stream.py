"""Streamed landing writes: one part file per chunk of SKUs and week, markers once all are in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from zeos_forecast.datasets.landing import write_landing, write_landing_stream
from zeos_forecast.datasets.synthetic import CHUNK_SKUS, generate_panel, stream_panel
from zeos_forecast.storage import Lake

LAST_WEEK = dt.date(2026, 11, 16)
SKUS, WEEKS = 2 * CHUNK_SKUS + 1000, 6  # three chunks of one simulation block each
KEY = ["article_id", "merchant_id"]


def stream(skus: int = SKUS, weeks: int = WEEKS):
    return stream_panel(skus, weeks, LAST_WEEK, seed=3, chunk_skus=CHUNK_SKUS)


def drop(root: Path, week: pd.Timestamp) -> pd.DataFrame:
    folder = root / "landing" / "sales" / f"week={week.date()}"
    return pd.read_parquet(folder).sort_values(KEY, ignore_index=True)


def part_files(root: Path) -> dict[str, list[str]]:
    return {
        folder.name: sorted(p.name for p in folder.iterdir())
        for folder in sorted((root / "landing" / "sales").iterdir())
    }


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("streamed")
    return root, write_landing_stream(stream(), Lake(str(root)))


def test_streamed_drops_hold_exactly_the_rows_of_the_in_memory_writer(streamed, tmp_path):
    root, rows = streamed
    panel = generate_panel(SKUS, WEEKS, LAST_WEEK, seed=3)
    assert write_landing(panel, Lake(str(tmp_path))) == rows == panel.live.sum()
    for week in panel.weeks:
        pd.testing.assert_frame_equal(drop(root, week), drop(tmp_path, week))
    for table in ("articles", "merchants"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(root / "landing" / table), pd.read_parquet(tmp_path / "landing" / table)
        )


def test_every_week_gets_one_part_per_chunk_and_its_marker(streamed):
    root = streamed[0]
    files = part_files(root)
    assert len(files) == WEEKS
    for names in files.values():
        assert names == ["_SUCCESS", "part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert len(Lake(str(root)).sales_drop_weeks()) == WEEKS


def test_no_drop_is_complete_before_every_chunk_is_written(tmp_path):
    lake = Lake(str(tmp_path))
    write_landing_stream(stream(300), lake)  # an earlier generation: complete drops
    complete_while_writing = []

    write_landing_stream(
        stream(), lake, each_chunk=lambda _: complete_while_writing.append(lake.sales_drop_weeks())
    )

    assert complete_while_writing == [{}, {}, {}]
    assert len(lake.sales_drop_weeks()) == WEEKS


def test_a_new_generation_replaces_the_part_files_of_an_earlier_one(tmp_path):
    lake = Lake(str(tmp_path))
    write_landing_stream(stream(), lake)

    rows = write_landing_stream(stream(300), lake)

    assert all(names == ["_SUCCESS", "part-0.parquet"] for names in part_files(tmp_path).values())
    total = sum(len(drop(tmp_path, week)) for week in stream(300).weeks)
    assert total == rows


def test_drop_weeks_keeps_the_later_weeks_out_of_the_landing_zone(tmp_path):
    lake = Lake(str(tmp_path))
    seen = []

    write_landing_stream(stream(300), lake, drop_weeks=4, each_chunk=seen.append)

    weeks = stream(300).weeks
    assert list(lake.sales_drop_weeks()) == [w.date() for w in weeks[:4]]
    assert len(seen) == 1 and seen[0].units_sold.shape == (300, WEEKS)
