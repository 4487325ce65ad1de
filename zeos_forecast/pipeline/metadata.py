"""Materialization metadata a person wants to see: sizes, timings, memory, previews, paths."""

from __future__ import annotations

import resource
from typing import Any

import dagster as dg
import pandas as pd

__all__ = ["PREVIEW_ROWS", "peak_memory_mb", "preview", "timings"]

PREVIEW_ROWS = 10


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".3f"))


def timings(seconds: dict[str, float]) -> dict[str, Any]:
    return {f"seconds_{stage}": round(value, 2) for stage, value in seconds.items()}
