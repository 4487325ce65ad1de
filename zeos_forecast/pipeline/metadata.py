"""Materialization metadata a person wants to see: sizes, timings, memory, previews, pictures."""

from __future__ import annotations

import base64
import resource
from typing import Any

import dagster as dg
import pandas as pd

__all__ = ["PREVIEW_ROWS", "peak_memory_mb", "picture", "preview", "table_preview", "timings"]

PREVIEW_ROWS = 10


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".3f"))


def table_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first rows as a table the UI shows as one (sortable, typed), with its schema."""
    head = frame.head(rows)
    columns = [dg.TableColumn(str(c), _column_type(head[c])) for c in head.columns]
    records = [
        dg.TableRecord({str(c): _cell(v) for c, v in row.items()})
        for row in head.to_dict(orient="records")
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def picture(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inside markdown metadata: the UI shows the image itself (a data URI)."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def _column_type(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    return "string"


def _cell(value: Any) -> str | int | float | bool | None:
    """A value a table record holds: numbers rounded for reading, dates and keys as text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 3)
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return str(value)


def timings(seconds: dict[str, float]) -> dict[str, Any]:
    return {f"seconds_{stage}": round(value, 2) for stage, value in seconds.items()}
