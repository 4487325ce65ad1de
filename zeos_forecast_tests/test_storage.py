"""Tests of the lake on a local root: atomic partitions, windows and the read-only landing zone."""

import datetime as dt
import gzip
import hashlib
import itertools
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from core_frames import ORIGIN, sales_drop
from hypothesis import given, settings
from hypothesis import strategies as st

from zeos_forecast.core.contract import LandingDataError, validate_sales_drop
from zeos_forecast.storage import LANDING_ARTICLES, STALE_TEMPORARY_SECONDS, SUCCESS_MARKER, Lake

WEEK = dt.date(2024, 1, 1)
DATASET, KEY = "sales_history", "week"


def week(i: int) -> dt.date:
    return WEEK + dt.timedelta(weeks=i)


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "article_id": [f"A{i}" for i in range(start, start + n)],
            "units_sold": [float(i) for i in range(start, start + n)],
        }
    )


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def drop_folder(lake: Lake, when: dt.date, marker: bool = True) -> Path:
    folder = Path(lake.sales_drop_dir(when))
    folder.mkdir(parents=True)
    if marker:
        (folder / SUCCESS_MARKER).touch()
    return folder


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---- derived datasets ----


def test_a_written_partition_reads_back_unchanged(lake):
    frame = pd.DataFrame(
        {"article_id": ["A1", "A2"], "units_sold": [1.5, 0.0], "censored": [True, False]}
    )

    lake.write_partition(DATASET, KEY, WEEK, pa.Table.from_pandas(frame, preserve_index=False))

    pd.testing.assert_frame_equal(lake.read_partition(DATASET, KEY, WEEK), frame)


def test_a_partition_is_one_parquet_file_in_a_hive_folder(lake, tmp_path):
    path = lake.write_partition(DATASET, KEY, WEEK, rows(3))

    assert path == str(tmp_path / "lake" / DATASET / f"{KEY}=2024-01-01" / "part-0.parquet")
    assert os.listdir(Path(path).parent) == ["part-0.parquet"]


def test_rewriting_a_partition_replaces_it_and_leaves_no_temporary_file(lake):
    lake.write_partition(DATASET, KEY, WEEK, rows(5))

    path = lake.write_partition(DATASET, KEY, WEEK, rows(2, start=100))

    assert os.listdir(Path(path).parent) == ["part-0.parquet"]
    again = lake.read_partition(DATASET, KEY, WEEK)
    assert again["article_id"].tolist() == ["A100", "A101"]
    assert len(lake.read_window(DATASET, KEY, WEEK, WEEK)) == 2


def test_a_batch_written_partition_keeps_dictionary_pages_for_keys_and_weeks_not_numbers(lake):
    keys = pa.array(["A1", "A2", "A1", "A2"]).dictionary_encode()
    table = pa.table(
        {
            "article_id": keys,
            "merchant_id": ["M1"] * 4,
            "week": pa.array([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08")] * 2),
            "demand": [1.0, 2.0, 1.0, 3.0],
        }
    )

    path, _ = lake.write_partition_batches(DATASET, KEY, WEEK, [table, table])

    with open(path, "rb") as handle:
        group = pq.ParquetFile(handle).metadata.row_group(0)
        encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(4)}
    assert "RLE_DICTIONARY" in encodings["article_id"]
    assert "RLE_DICTIONARY" in encodings["merchant_id"]
    assert "RLE_DICTIONARY" in encodings["week"]
    assert "RLE_DICTIONARY" not in encodings["demand"]
    pd.testing.assert_frame_equal(
        lake.read_partition(DATASET, KEY, WEEK),
        pa.concat_tables([table, table]).to_pandas(),
        check_categorical=False,
    )


# The features hold `article_id` as a category, the forecast as text: both keep its statistics,
# which reads by ranges of articles (the forecast checks) prune parts by.
@pytest.mark.parametrize("categorical_articles", [False, True])
def test_a_batch_written_partition_keeps_statistics_of_keys_and_weeks_but_not_of_measures(
    lake, categorical_articles
):
    articles = pa.array(["A1", "A2", "A3"])
    table = pa.table(
        {
            "sku": pa.array([0, 1, 2], pa.int32()),
            "article_id": articles.dictionary_encode() if categorical_articles else articles,
            "category": pa.array(["x", "y", "x"]).dictionary_encode(),
            "week": pa.array([dt.date(2024, 1, 1)] * 3, pa.date32()),
            "demand": [1.0, 2.0, 3.0],
            "observed": [True, False, True],
        }
    )

    path, _ = lake.write_partition_batches(DATASET, KEY, WEEK, [table])

    with open(path, "rb") as handle:
        group = pq.ParquetFile(handle).metadata.row_group(0)
        with_statistics = {
            group.column(i).path_in_schema
            for i in range(group.num_columns)
            if group.column(i).is_stats_set
        }
    assert with_statistics == {"sku", "article_id", "week"}


@pytest.mark.parametrize("columns", [None, ["sku", "demand"]])
def test_a_row_group_read_keeps_only_the_rows_its_filters_name(lake, columns):
    table = pa.table(
        {
            "sku": pa.array(range(12), pa.int32()),
            "active": [True, False, True] * 4,
            "demand": [float(i) for i in range(12)],
        }
    )
    lake.write_partition_batches(DATASET, KEY, WEEK, [table.slice(0, 6), table.slice(6)])
    read = lake.row_group_reader(DATASET, KEY, WEEK)

    everything = read([0, 1], columns)
    active = read([0, 1], columns, where="active")
    sampled = read([1], columns, every=("sku", 4))
    both = read([0, 1], columns, every=("sku", 2), where="active")

    assert everything["sku"].tolist() == list(range(12))
    assert active["sku"].tolist() == [0, 2, 3, 5, 6, 8, 9, 11]
    assert sampled["sku"].tolist() == [8]
    assert both["sku"].tolist() == [0, 2, 6, 8]
    # A column read only to filter by is not returned.
    assert list(active.columns) == (columns or ["sku", "active", "demand"])


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.sampled_from(["A1", "A2", "A3", "B1", "B2", "C"]), min_size=1, max_size=6),
        min_size=1,
        max_size=6,
    ),
    rows=st.integers(1, 12),
)
def test_key_ranges_cover_every_key_once_cut_where_row_groups_start(groups, rows):
    # Row groups of one file sorted by article (a group may hold the same article as the next).
    articles = sorted(a for group in groups for a in group)
    sizes = [len(group) for group in groups]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    tables = [
        pa.table({"article_id": articles[i : i + n], "row": list(range(i, i + n))})
        for i, n in zip(starts, sizes, strict=True)
    ]
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        lake.write_partition_batches(DATASET, KEY, WEEK, tables)
        window = lake.open_window(DATASET, KEY, WEEK, WEEK)

        ranges = window.key_ranges("article_id", rows)
        parts = [
            lake.read_window(DATASET, KEY, WEEK, WEEK, ranges={"article_id": r}, window=window)
            for r in ranges
        ]

    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(high == low for (_, high), (low, _) in itertools.pairwise(ranges))
    cuts = [low for low, _ in ranges[1:]]
    assert cuts == sorted(set(cuts)) and set(cuts) <= {t["article_id"][0].as_py() for t in tables}
    assert sorted(row for part in parts for row in part["row"]) == list(range(len(articles)))
    # A new range starts at the first row group past `rows` rows, where its first key is new.
    assert len(ranges) <= max(1, len(articles) // rows + 1)


def test_partitions_lists_every_written_value_in_order(lake):
    for i in (3, 0, 1):
        lake.write_partition(DATASET, KEY, week(i), rows(1))
    lake.write_partition("other_dataset", KEY, week(7), rows(1))

    found = lake.partitions(DATASET, KEY)

    assert list(found) == [week(0), week(1), week(3)]
    assert all(isinstance(mtime, float) for mtime in found.values())
    assert lake.partitions("never_written", KEY) == {}


def test_a_partition_left_with_only_a_temporary_file_is_not_listed_or_read(lake, tmp_path):
    lake.write_partition(DATASET, KEY, week(0), rows(2))
    crashed = Path(lake.partition_dir(DATASET, KEY, week(1)))
    crashed.mkdir(parents=True)
    (crashed / ".part-0.parquet.0123abcd.tmp").write_bytes(b"PAR1 half a file")

    assert list(lake.partitions(DATASET, KEY)) == [week(0)]
    assert len(lake.read_window(DATASET, KEY, week(0), week(1))) == 2


def test_read_window_returns_the_partitions_from_first_to_last_inclusive(lake):
    for i in range(5):
        lake.write_partition(DATASET, KEY, week(i), rows(2, start=10 * i))

    window = lake.read_window(DATASET, KEY, week(1), week(3))

    assert sorted(window[KEY].unique()) == [week(1), week(2), week(3)]
    assert sorted(window["article_id"]) == ["A10", "A11", "A20", "A21", "A30", "A31"]


def test_read_window_can_select_columns(lake):
    lake.write_partition(DATASET, KEY, WEEK, rows(2))

    window = lake.read_window(DATASET, KEY, WEEK, WEEK, columns=["units_sold"])

    assert list(window.columns) == ["units_sold"]


def test_read_window_of_a_dataset_never_written_is_empty(lake):
    assert lake.read_window(DATASET, KEY, week(0), week(52)).empty


def test_read_window_outside_the_written_weeks_is_empty(lake):
    lake.write_partition(DATASET, KEY, week(0), rows(2))

    assert lake.read_window(DATASET, KEY, week(1), week(9)).empty


def test_read_window_keeps_a_column_that_only_later_partitions_have(lake):
    lake.write_partition(DATASET, KEY, week(0), rows(1))
    lake.write_partition(DATASET, KEY, week(1), rows(1).append_column("promo", pa.array([1.0])))

    window = lake.read_window(DATASET, KEY, week(0), week(1))

    assert "promo" in window.columns
    assert window.sort_values(KEY)["promo"].isna().tolist() == [True, False]


def test_reading_a_missing_partition_names_it_and_what_to_do(lake):
    with pytest.raises(FileNotFoundError, match="Materialize sales_history") as caught:
        lake.read_partition(DATASET, KEY, WEEK)

    assert "week=2024-01-01" in str(caught.value)


@settings(max_examples=15, deadline=None)
@given(
    units=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=0, max_size=30
    ),
    text=st.text(min_size=0, max_size=8),
)
def test_any_table_round_trips_through_a_partition(units, text):
    frame = pd.DataFrame({"units_sold": pd.Series(units, dtype="float64")})
    frame["article_id"] = [f"{text}{i}" for i in range(len(units))]
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(root)
        lake.write_partition(DATASET, KEY, WEEK, pa.table({"units_sold": [0.0]}))
        lake.write_partition(DATASET, KEY, WEEK, pa.Table.from_pandas(frame, preserve_index=False))

        back = lake.read_partition(DATASET, KEY, WEEK)

    pd.testing.assert_frame_equal(back, frame, check_index_type=False)


# ---- landing zone ----


def test_sales_drop_weeks_lists_only_drops_with_a_success_marker(lake):
    for i in (2, 0):
        lake.write_landing_drop(week(i), sales_drop(week(i)))
    incomplete = drop_folder(lake, week(1), marker=False)
    sales_drop(week(1)).to_parquet(incomplete / "part-0.parquet")
    (Path(lake.path("landing/sales")) / "week=not-a-date").mkdir()
    (Path(lake.path("landing/sales")) / "week=not-a-date" / SUCCESS_MARKER).touch()

    assert list(lake.sales_drop_weeks()) == [week(0), week(2)]


def test_an_empty_landing_zone_has_no_drops(lake):
    assert lake.sales_drop_weeks() == {}


def test_reading_a_drop_without_its_marker_names_the_folder(lake):
    folder = drop_folder(lake, WEEK, marker=False)
    sales_drop(WEEK).to_parquet(folder / "part-0.parquet")

    with pytest.raises(FileNotFoundError, match=SUCCESS_MARKER) as caught:
        lake.read_sales_drop(WEEK)

    assert str(folder) in str(caught.value)


def test_reading_a_drop_that_does_not_exist_names_the_folder(lake):
    with pytest.raises(FileNotFoundError) as caught:
        lake.read_sales_drop(WEEK)

    assert lake.sales_drop_dir(WEEK) in str(caught.value)


def test_a_written_landing_drop_reads_back_as_its_frame(lake):
    drop = sales_drop(WEEK)

    lake.write_landing_drop(WEEK, drop)

    [landing] = lake.read_sales_drop(WEEK)
    assert landing.path == os.path.join(lake.sales_drop_dir(WEEK), "part-0.parquet")
    pd.testing.assert_frame_equal(landing.frame, drop, check_dtype=False)


def test_a_drop_is_read_file_by_file_in_name_order_skipping_other_files(lake):
    folder = drop_folder(lake, WEEK)
    sales_drop(WEEK, n_skus=2, first_sku=0).to_parquet(folder / "b.parquet")
    sales_drop(WEEK, n_skus=3, first_sku=2).to_csv(folder / "a.csv", index=False)
    (folder / "README.txt").write_text("exported by the shop system")
    (folder / ".c.parquet").write_bytes(b"hidden upload in progress")
    (folder / "_d.csv").write_text("article_id\nnot data\n")

    files = lake.read_sales_drop(WEEK)

    assert [Path(f.path).name for f in files] == ["a.csv", "b.parquet"]
    assert [len(f.frame) for f in files] == [3, 2]


def test_csv_and_gzipped_csv_landing_files_are_read_as_text(lake):
    folder = drop_folder(lake, WEEK)
    text = "article_id,merchant_id,week,units_sold,availability\n007,M1,2024-01-01,3,\n"
    (folder / "plain.csv").write_text(text)
    with gzip.open(folder / "packed.csv.gz", "wt") as out:
        out.write(text.replace("007", "008"))

    files = lake.read_sales_drop(WEEK)

    assert [Path(f.path).name for f in files] == ["packed.csv.gz", "plain.csv"]
    for landing, article in zip(files, ["008", "007"], strict=True):
        assert landing.frame.to_dict("records") == [
            {
                "article_id": article,
                "merchant_id": "M1",
                "week": "2024-01-01",
                "units_sold": "3",
                "availability": "",
            }
        ]
    combined = validate_sales_drop([(f.path, f.frame) for f in files], WEEK)
    assert combined["availability"].tolist() == [1.0, 1.0]


def test_metadata_files_are_read_from_their_folder(lake):
    articles = pd.DataFrame({"article_id": ["A1"], "category": ["shoes"]})
    lake.write_landing_table(LANDING_ARTICLES, "articles.parquet", articles)
    (Path(lake.path(LANDING_ARTICLES)) / "more.csv").write_text("article_id,category\n2,bags\n")

    files = sorted(lake.read_metadata(LANDING_ARTICLES), key=lambda f: f.path)

    assert [Path(f.path).name for f in files] == ["articles.parquet", "more.csv"]
    pd.testing.assert_frame_equal(files[0].frame, articles)
    assert files[1].frame.to_dict("records") == [{"article_id": "2", "category": "bags"}]
    assert lake.read_metadata("landing/merchants") == []


def test_landing_files_are_byte_for_byte_unchanged_after_reading(lake):
    folder = drop_folder(lake, WEEK)
    sales_drop(WEEK, n_skus=2).to_parquet(folder / "part-0.parquet")
    sales_drop(WEEK, n_skus=2, first_sku=2).to_csv(folder / "part-1.csv", index=False)
    with gzip.open(folder / "part-2.csv.gz", "wt") as out:
        sales_drop(WEEK, n_skus=2, first_sku=4).to_csv(out, index=False)
    lake.write_landing_table(
        LANDING_ARTICLES, "articles.parquet", pd.DataFrame({"article_id": ["A"]})
    )
    landing = Path(lake.path("landing"))
    before = digests(landing)
    mtimes = {p: p.stat().st_mtime_ns for p in landing.rglob("*")}

    files = lake.read_sales_drop(WEEK)
    validate_sales_drop([(f.path, f.frame) for f in files], WEEK)
    lake.read_metadata(LANDING_ARTICLES)
    lake.sales_drop_weeks()

    assert digests(landing) == before
    assert {p: p.stat().st_mtime_ns for p in landing.rglob("*")} == mtimes
    assert len(before) == 5


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("sales.parquet", b""),
        ("sales.parquet", b"PAR1 not really parquet"),
        ("sales.csv", b""),
        ("sales.csv", "article_id;week\n\xe9t\xe9".encode("latin-1")),
    ],
    ids=["empty-parquet", "garbage-parquet", "empty-csv", "latin1-csv"],
)
def test_an_unreadable_landing_file_is_a_landing_error_naming_it(tmp_path, name, content):
    folder = tmp_path / "landing" / "sales" / f"week={ORIGIN}"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    (folder / "_SUCCESS").touch()

    with pytest.raises(LandingDataError, match="cannot be read as") as caught:
        Lake(str(tmp_path)).read_sales_drop(ORIGIN)

    assert caught.value.file.endswith(name)
    assert (folder / name).read_bytes() == content


# ---- windows opened once, read by key range ----

KEYS = [f"A{i:03d}" for i in range(60)]
bound = st.none() | st.sampled_from([*KEYS, "A", "B", "A0305"])


def sorted_weeks(lake: Lake, weeks: int, group_rows: int) -> None:
    """Weeks of rows sorted by article, written as row groups of `group_rows` rows."""
    for i in range(weeks):
        table = rows(len(KEYS)).set_column(0, "article_id", pa.array(KEYS))
        groups = [table.slice(s, group_rows) for s in range(0, len(KEYS), group_rows)]
        lake.write_partition_batches(DATASET, KEY, week(i), groups)


@settings(max_examples=40, deadline=None)
@given(low=bound, high=bound, group_rows=st.integers(1, 25))
def test_a_window_opened_once_reads_a_key_range_as_a_full_read_would(low, high, group_rows):
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake(folder)
        sorted_weeks(lake, 3, group_rows)
        window = lake.open_window(DATASET, KEY, week(0), week(2))
        ranges = {"article_id": (low, high)}

        got = lake.read_window(DATASET, KEY, week(0), week(2), ranges=ranges, window=window)

        everything = lake.read_window(DATASET, KEY, week(0), week(2))
        keep = everything["article_id"].map(
            lambda a: (low is None or a >= low) and (high is None or a < high)
        )
        expected = everything.loc[keep]
        by = ["week", "article_id"]
        pd.testing.assert_frame_equal(
            got.sort_values(by, ignore_index=True), expected.sort_values(by, ignore_index=True)
        )


def test_a_window_scans_only_the_row_groups_whose_keys_overlap_the_range(lake):
    sorted_weeks(lake, 2, group_rows=10)  # 6 row groups a week: A000-A009, A010-A019, ...
    window = lake.open_window(DATASET, KEY, week(0), week(1))

    scan = window.dataset({"article_id": ("A015", "A025")})

    chosen = sorted(group.id for f in scan.get_fragments() for group in f.row_groups)
    assert chosen == [1, 1, 2, 2]  # A010-A019 and A020-A029 of each week


# ---- partitions written in parts ----

PARTS = "demand_features"  # the dataset written in parts


def numbered(skus: range) -> pa.Table:
    return pa.table({"sku": pa.array(list(skus), pa.int64()), "demand": [float(s) for s in skus]})


def publish(lake: Lake, *tables: pa.Table, value: dt.date = WEEK, footer=None) -> str:
    writer = lake.part_writer(PARTS, KEY, value)
    parts = [writer.write(n, [t.slice(0, 2), t.slice(2)]) for n, t in enumerate(tables)]
    return lake.publish_parts(PARTS, KEY, value, writer, parts, footer=footer)


def test_parts_published_read_back_as_one_partition_in_their_order(lake):
    publish(lake, numbered(range(0, 4)), numbered(range(10, 13)), footer={"stats": "{}"})

    assert lake.read_partition(PARTS, KEY, WEEK)["sku"].tolist() == [0, 1, 2, 3, 10, 11, 12]
    assert lake.partition_layout(PARTS, KEY, WEEK) == (4, 7)  # two row groups per part
    assert lake.partition_footer(PARTS, KEY, WEEK) == {"stats": "{}"}
    assert list(lake.partitions(PARTS, KEY)) == [WEEK]
    read = lake.row_group_reader(PARTS, KEY, WEEK)
    assert read([1, 2])["sku"].tolist() == [2, 3, 10, 11]  # numbered on across the parts
    assert read([0, 1, 2, 3], ["demand"], every=("sku", 2))["demand"].tolist() == [0, 2, 10, 12]
    window = lake.read_window(PARTS, KEY, WEEK, WEEK, columns=["sku", KEY])
    assert window["sku"].tolist() == [0, 1, 2, 3, 10, 11, 12]
    assert set(window[KEY]) == {WEEK}


def test_parts_are_hidden_from_folder_readers_that_skip_underscore_names(lake, tmp_path):
    publish(lake, numbered(range(3)))

    folder = tmp_path / "lake" / PARTS / f"{KEY}={WEEK}"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "_parts"]


def test_unpublished_parts_leave_the_previous_version_whole_and_the_only_one_read(lake):
    publish(lake, numbered(range(3)))
    writer = lake.part_writer(PARTS, KEY, WEEK)
    writer.write(0, [numbered(range(100, 150))])

    def failing():
        yield numbered(range(150, 160))
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        writer.write(1, failing())

    assert lake.read_partition(PARTS, KEY, WEEK)["sku"].tolist() == [0, 1, 2]
    assert lake.read_window(PARTS, KEY, WEEK, WEEK)["sku"].tolist() == [0, 1, 2]


def age(folder: Path) -> None:
    """Makes every file under `folder` older than the stale age."""
    stale = time.time() - STALE_TEMPORARY_SECONDS - 60
    for path in folder.rglob("*"):
        os.utime(path, (stale, stale))


def test_publishing_replaces_a_single_file_and_deletes_only_versions_no_reader_needs(
    lake, tmp_path
):
    lake.write_partition(PARTS, KEY, WEEK, numbered(range(5)))  # as written before parts
    folder = tmp_path / "lake" / PARTS / f"{KEY}={WEEK}"
    publish(lake, numbered(range(2)))
    assert not (folder / "part-0.parquet").exists()
    [first] = (folder / "_parts").iterdir()
    age(first)  # written long ago, and current until the next publication
    killed = lake.part_writer(PARTS, KEY, WEEK)
    killed.write(0, [numbered(range(9))])  # a writer killed before it published
    age(folder / "_parts" / killed.version)

    publish(lake, numbered(range(3)))

    versions = {p.name for p in (folder / "_parts").iterdir()}
    assert killed.version not in versions  # stale and never published: deleted
    assert first.name in versions  # just replaced: its readers may still be reading it
    assert lake.read_partition(PARTS, KEY, WEEK)["sku"].tolist() == [0, 1, 2]

    publish(lake, numbered(range(4)))  # the next publication: the first version is stale

    assert first.name not in {p.name for p in (folder / "_parts").iterdir()}
    assert len(list((folder / "_parts").iterdir())) == 2  # the current one and the one before


def test_a_reader_opened_before_a_publication_reads_its_own_version_whole(lake):
    publish(lake, numbered(range(4)))
    opened = lake.row_groups(PARTS, KEY, WEEK)

    publish(lake, numbered(range(100, 110)), numbered(range(200, 210)))

    assert (opened.groups, opened.rows) == (2, 4)
    assert opened.read(range(opened.groups))["sku"].tolist() == [0, 1, 2, 3]


def test_only_the_datasets_written_in_parts_can_be_published_in_parts(lake):
    writer = lake.part_writer(DATASET, KEY, WEEK)
    part = writer.write(0, [rows(2)])
    with pytest.raises(ValueError, match="not written in parts"):
        lake.publish_parts(DATASET, KEY, WEEK, writer, [part])
