"""Writes a generated panel into a lake's landing zone, exactly as a user's weekly drops arrive."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Callable

import pandas as pd
import pyarrow.fs as pafs

from ..core.progress import Progress, Report
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, SUCCESS_MARKER, Lake
from .synthetic import PanelStream, SyntheticPanel

__all__ = ["write_landing", "write_landing_stream"]

# Data files of a streamed drop: one per chunk of SKUs, `part-0.parquet`, `part-1.parquet`, ...
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"


def write_landing(panel: SyntheticPanel, lake: Lake, report: Report | None = None) -> int:
    """Writes article and merchant metadata, then one drop per week with its `_SUCCESS` marker.

    Returns:
        The number of sales rows written.
    """
    _write_metadata(panel, lake)
    progress = Progress("writing weekly drops", len(panel.weeks), "weeks", report)
    rows = 0
    for t, week in enumerate(panel.weeks):
        frame = _drop_frame(panel, t)
        lake.write_landing_drop(week.date(), frame)
        rows += len(frame)
        progress.advance()
    return rows


def write_landing_stream(
    stream: PanelStream,
    lake: Lake,
    drop_weeks: int | None = None,
    report: Report | None = None,
    each_chunk: Callable[[SyntheticPanel], None] | None = None,
) -> int:
    """Writes a streamed panel as weekly drops, one part file per chunk of SKUs and week.

    The drops of the weeks written lose their `_SUCCESS` marker and earlier part files first, so
    that no reader takes a half-written drop for a complete one; chunk `i` then adds
    `landing/sales/week=W/part-<i>.parquet` to every week's drop, and the markers of all weeks
    are written once every chunk is in. Only one chunk is in memory at a time.

    Args:
        stream: The panel, from `stream_panel`.
        lake: Where to write.
        drop_weeks: Write drops for the first `drop_weeks` weeks only (default: all), say to
            keep the later weeks out of the landing zone as held-out data.
        report: Where progress goes (chunks done, rate, ETA).
        each_chunk: Called with every chunk after its drops are written (to write the held-out
            weeks elsewhere, for instance).

    Returns:
        The number of sales rows written.
    """
    weeks = [week.date() for week in stream.weeks[:drop_weeks]]
    _write_metadata(stream, lake)
    for week in weeks:
        _clear_drop(lake, week)
    step = f"writing weekly drops ({stream.chunk_skus:,} SKUs per chunk)"
    progress = Progress(step, len(stream), "chunks", report)
    rows = 0
    for index, chunk in enumerate(stream):
        for t, week in enumerate(weeks):
            frame = _drop_frame(chunk, t)
            if len(frame) or index == 0:  # every drop has a part-0, even an empty one
                name = f"{PART_PREFIX}{index}{PART_SUFFIX}"
                lake.write_landing_table(_drop_folder(lake, week), name, frame)
                rows += len(frame)
        if each_chunk is not None:
            each_chunk(chunk)
        progress.advance()
    for week in weeks:
        marker = posixpath.join(lake.sales_drop_dir(week), SUCCESS_MARKER)
        with lake.fs.open_output_stream(marker) as out:
            out.write(b"")
    return rows


def _write_metadata(panel: SyntheticPanel | PanelStream, lake: Lake) -> None:
    lake.write_landing_table(LANDING_ARTICLES, "articles.parquet", panel.articles)
    lake.write_landing_table(LANDING_MERCHANTS, "merchants.parquet", panel.merchants)


def _drop_frame(panel: SyntheticPanel, t: int) -> pd.DataFrame:
    """The rows of week `t` as they land: live SKUs, `week` as a date."""
    frame = panel.week_frame(t)
    frame["week"] = frame["week"].dt.date
    return frame


def _drop_folder(lake: Lake, week: dt.date) -> str:
    """The week's sales drop folder relative to the lake root, as `write_landing_table` takes it."""
    return posixpath.relpath(lake.sales_drop_dir(week), lake.base)


def _clear_drop(lake: Lake, week: dt.date) -> None:
    """Removes the week's marker, then the part files an earlier generation left there."""
    folder = lake.sales_drop_dir(week)
    infos = lake.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    names = {posixpath.basename(info.path): info.path for info in infos}
    if SUCCESS_MARKER in names:
        lake.fs.delete_file(names.pop(SUCCESS_MARKER))
    for name, path in names.items():
        if name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
            lake.fs.delete_file(path)
