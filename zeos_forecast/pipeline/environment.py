"""Deployment settings read from the environment, in one place, each with a working default."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

__all__ = ["DEFAULT_FIRST_WEEK", "first_week", "lake_root"]

# Earliest week a partition exists for; set ZEOS_FIRST_WEEK for older history.
DEFAULT_FIRST_WEEK = "2018-01-01"


def lake_root() -> str:
    """`ZEOS_LAKE` (a local path or `s3://bucket/prefix`), else `./lake` under the working dir."""
    return os.environ.get("ZEOS_LAKE") or str(Path.cwd() / "lake")


def first_week() -> dt.date:
    """`ZEOS_FIRST_WEEK` (a Monday, ISO date): the first weekly partition."""
    value = os.environ.get("ZEOS_FIRST_WEEK") or DEFAULT_FIRST_WEEK
    week = dt.date.fromisoformat(value)
    if week.weekday() != 0:
        raise ValueError(f"ZEOS_FIRST_WEEK={value} is not a Monday.")
    return week
