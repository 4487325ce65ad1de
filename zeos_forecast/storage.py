"""The lake: every read and write of parquet and landing files goes through `Lake`.

A lake root is a local directory (the embedded default) or `s3://bucket/prefix`. Derived
datasets are Hive-partitioned (`<dataset>/<key>=YYYY-MM-DD/part-0.parquet`), one file per
partition, so that a partition is replaced in one atomic step and a re-run never duplicates rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import posixpath
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "LANDING_ARTICLES",
    "LANDING_MERCHANTS",
    "LANDING_SALES",
    "SUCCESS_MARKER",
    "Lake",
    "LandingFile",
]

LANDING_SALES = "landing/sales"
LANDING_ARTICLES = "landing/articles"
LANDING_MERCHANTS = "landing/merchants"
SUCCESS_MARKER = "_SUCCESS"
PART_FILE = "part-0.parquet"
DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz")
# Row groups of this size keep readers' memory flat and let them skip by statistics.
ROW_GROUP_ROWS = 1_000_000


@dataclass(frozen=True)
class LandingFile:
    """One data file of a landing drop, read as it is (never modified)."""

    path: str
    frame: pd.DataFrame


class Lake:
    """A lake rooted at a local path or an `s3://` URI.

    Args:
        root: Local directory or `s3://bucket/prefix`.
        filesystem: A pyarrow filesystem to use instead of the one inferred from `root`
            (e.g. an `S3FileSystem` with an endpoint and credentials).
    """

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None):
        self.uri = root.rstrip("/")
        if filesystem is None:
            filesystem, path = pafs.FileSystem.from_uri(_absolute(self.uri))
        else:
            path = self.uri.removeprefix("s3://")
        self.fs = filesystem
        self.base = path.rstrip("/")
        self.is_local = isinstance(filesystem, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def path(self, *parts: str) -> str:
        """The filesystem path of `parts` under the root."""
        return posixpath.join(self.base, *parts)

    def uri_of(self, *parts: str) -> str:
        """A URI a person (or DuckDB, Spark, Athena) can use for `parts` under the root."""
        return posixpath.join(_absolute(self.uri), *parts)

    # ---- landing zone (read-only for the pipeline, written only by importers and generators) ----

    def sales_drop_weeks(self) -> dict[dt.date, float]:
        """Weeks whose sales drop is complete (has its `_SUCCESS` marker), with its mtime."""
        weeks: dict[dt.date, float] = {}
        for info in self._list(LANDING_SALES, recursive=True):
            folder, name = posixpath.split(info.path)
            if name != SUCCESS_MARKER:
                continue
            week = _parse_partition_dir(posixpath.basename(folder), "week")
            if week is not None and info.mtime is not None:
                weeks[week] = info.mtime.timestamp()
        return dict(sorted(weeks.items()))

    def sales_drop_dir(self, week: dt.date) -> str:
        return self.path(LANDING_SALES, f"week={week.isoformat()}")

    def read_sales_drop(self, week: dt.date) -> list[LandingFile]:
        """The data files of the week's sales drop; raises if the drop is missing or incomplete."""
        folder = self.sales_drop_dir(week)
        infos = [i for i in self._list_dir(folder) if i.type == pafs.FileType.File]
        names = {posixpath.basename(i.path) for i in infos}
        if SUCCESS_MARKER not in names:
            raise FileNotFoundError(
                f"No complete sales drop for week {week}: {self._display(folder)} has no "
                f"{SUCCESS_MARKER} marker. Drop the week's files there, then the marker."
            )
        return [
            self._read_landing_file(i.path)
            for i in sorted(infos, key=lambda i: i.path)
            if _is_data_file(i.path)
        ]

    def read_metadata(self, folder: str) -> list[LandingFile]:
        """All data files of a metadata folder such as `landing/articles` (empty if absent)."""
        return [
            self._read_landing_file(i.path)
            for i in self._list(folder, recursive=True)
            if i.type == pafs.FileType.File and _is_data_file(i.path)
        ]

    def write_landing_drop(self, week: dt.date, frame: pd.DataFrame) -> str:
        """Writes a complete weekly drop the way a user's upload arrives: data, then marker."""
        folder = self.sales_drop_dir(week)
        self.fs.create_dir(folder, recursive=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, posixpath.join(folder, PART_FILE), filesystem=self.fs)
        with self.fs.open_output_stream(posixpath.join(folder, SUCCESS_MARKER)) as out:
            out.write(b"")
        return folder

    def write_landing_table(self, folder: str, name: str, frame: pd.DataFrame) -> str:
        """Writes a metadata table (articles, merchants) into a landing folder."""
        self.fs.create_dir(self.path(folder), recursive=True)
        path = self.path(folder, name)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, filesystem=self.fs)
        return path

    # ---- derived datasets: Hive-partitioned parquet, one file per partition ----

    def partition_dir(self, dataset: str, key: str, value: dt.date) -> str:
        return self.path(dataset, f"{key}={value.isoformat()}")

    def write_partition(self, dataset: str, key: str, value: dt.date, table: pa.Table) -> str:
        """Replaces one partition atomically: readers see the old file or the new one, never half.

        Locally the file is written under a dot-name that dataset readers skip, then renamed over
        the old one. On S3 an object only becomes visible when its upload completes.
        """
        folder = self.partition_dir(dataset, key, value)
        final = posixpath.join(folder, PART_FILE)
        self.fs.create_dir(folder, recursive=True)
        target = (
            posixpath.join(folder, f".{PART_FILE}.{uuid.uuid4().hex}.tmp")
            if self.is_local
            else final
        )
        try:
            pq.write_table(table, target, filesystem=self.fs, row_group_size=ROW_GROUP_ROWS)
            if target != final:
                self.fs.move(target, final)
        except BaseException:
            if target != final:
                _delete_quietly(self.fs, target)
            raise
        return final

    def partitions(self, dataset: str, key: str) -> dict[dt.date, float]:
        """Partition values that hold a complete file, with the file's mtime."""
        found: dict[dt.date, float] = {}
        for info in self._list(dataset, recursive=True):
            folder, name = posixpath.split(info.path)
            value = _parse_partition_dir(posixpath.basename(folder), key)
            if name == PART_FILE and value is not None and info.mtime is not None:
                found[value] = info.mtime.timestamp()
        return dict(sorted(found.items()))

    def read_partition(self, dataset: str, key: str, value: dt.date) -> pd.DataFrame:
        """One partition as pandas (the partition column is not stored in the file)."""
        path = posixpath.join(self.partition_dir(dataset, key, value), PART_FILE)
        try:
            return pq.read_table(path, filesystem=self.fs).to_pandas()
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"{dataset} has no partition {key}={value}: {self._display(path)} does not exist. "
                f"Materialize {dataset} for {value} first."
            ) from error

    def read_window(
        self,
        dataset: str,
        key: str,
        first: dt.date,
        last: dt.date,
        columns: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of partitions `first..last` (inclusive), pruned by the partition filter."""
        if not self.partitions(dataset, key):
            return pd.DataFrame()
        dataset_ = pads.dataset(
            self.path(dataset),
            filesystem=self.fs,
            format="parquet",
            partitioning=pads.partitioning(pa.schema([(key, pa.date32())]), flavor="hive"),
        )
        wanted = (pads.field(key) >= pa.scalar(first, pa.date32())) & (
            pads.field(key) <= pa.scalar(last, pa.date32())
        )
        # pyarrow takes the schema of the first file; a column added to later drops must not vanish.
        fragments = list(dataset_.get_fragments(filter=wanted))
        if not fragments:
            return pd.DataFrame()
        schema = pa.unify_schemas(
            [f.physical_schema for f in fragments] + [pa.schema([(key, pa.date32())])],
            promote_options="permissive",
        )
        table = dataset_.replace_schema(schema).to_table(
            columns=list(columns) if columns else None, filter=wanted
        )
        return table.to_pandas()

    # ---- internals ----

    def _list(self, folder: str, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path(folder), allow_not_found=True, recursive=recursive)
        return self.fs.get_file_info(selector)

    def _list_dir(self, path: str) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))

    def _read_landing_file(self, path: str) -> LandingFile:
        if path.endswith(".parquet"):
            frame = pq.read_table(path, filesystem=self.fs).to_pandas()
        else:
            # Everything as text: the contract validation decides types and reports bad cells.
            with self.fs.open_input_stream(path, compression="detect") as stream:
                frame = pd.read_csv(stream, dtype=str, keep_default_na=False)
        return LandingFile(path=self._display(path), frame=frame)

    def _display(self, path: str) -> str:
        return path if self.is_local else f"s3://{path}"


def _is_data_file(path: str) -> bool:
    name = posixpath.basename(path)
    return not name.startswith((".", "_")) and name.endswith(DATA_SUFFIXES)


def _parse_partition_dir(name: str, key: str) -> dt.date | None:
    prefix = f"{key}="
    if not name.startswith(prefix):
        return None
    try:
        return dt.date.fromisoformat(name[len(prefix) :])
    except ValueError:
        return None


def _absolute(uri: str) -> str:
    return uri if "://" in uri else os.path.abspath(uri)


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    with contextlib.suppress(OSError):
        fs.delete_file(path)
