"""Writes a generated panel into a lake's landing zone, exactly as a user's weekly drops arrive."""

from __future__ import annotations

from ..core.progress import Progress, Report
from ..storage import LANDING_ARTICLES, LANDING_MERCHANTS, Lake
from .synthetic import SyntheticPanel

__all__ = ["write_landing"]


def write_landing(panel: SyntheticPanel, lake: Lake, report: Report | None = None) -> int:
    """Writes article and merchant metadata, then one drop per week with its `_SUCCESS` marker.

    Returns:
        The number of sales rows written.
    """
    lake.write_landing_table(LANDING_ARTICLES, "articles.parquet", panel.articles)
    lake.write_landing_table(LANDING_MERCHANTS, "merchants.parquet", panel.merchants)
    progress = Progress("writing weekly drops", len(panel.weeks), "weeks", report)
    rows = 0
    for t, week in enumerate(panel.weeks):
        frame = panel.week_frame(t)
        frame["week"] = frame["week"].dt.date
        lake.write_landing_drop(week.date(), frame)
        rows += len(frame)
        progress.advance()
    return rows
