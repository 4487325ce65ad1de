"""Deployment settings read from the environment, in one place, each with a working default."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ..redaction import refuse_credentials

__all__ = [
    "DEFAULT_FIRST_WEEK",
    "DEPLOYMENTS",
    "DEPLOYMENT_VAR",
    "FIRST_WEEK_VAR",
    "LAKE_VAR",
    "S3_VARS",
    "deployment",
    "first_week",
    "lake_root",
    "schedule_time",
    "sensor_interval_seconds",
]

DEFAULT_SENSOR_INTERVAL_SECONDS = 60
DEFAULT_SCHEDULE_DAY, DEFAULT_SCHEDULE_HOUR = 1, 6  # Monday (0 = Sunday) 06:00 UTC
# The first partition of a lake whose first drop is not known when the definitions load (no drop
# yet, or an s3:// lake): set ZEOS_FIRST_WEEK (the component's `first_week`) for older history.
DEFAULT_FIRST_WEEK = "2018-01-01"
FIRST_WEEK_VAR = "ZEOS_FIRST_WEEK"
LAKE_VAR = "ZEOS_LAKE"
DEPLOYMENT_VAR = "ZEOS_DEPLOYMENT"
DEPLOYMENTS = ("local", "prod")
# The lake's S3Resource field -> the environment variables it is read from (the first one set).
# Values are only ever resolved by Dagster (`dg.EnvVar`), never read into code.
S3_VARS: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("ZEOS_S3_ENDPOINT_URL",),
    "region_name": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN",),
    "max_attempts": ("ZEOS_S3_MAX_ATTEMPTS",),
}


def lake_root() -> str:
    """`ZEOS_LAKE` (a local path or `s3://bucket/prefix`), else `./lake` under the working dir.

    Raises:
        CredentialsInUriError: when `ZEOS_LAKE` carries credentials (shown redacted).
    """
    root = os.environ.get(LAKE_VAR) or str(Path.cwd() / "lake")
    refuse_credentials(root, f"{LAKE_VAR}")
    return root


def deployment() -> str:
    """`ZEOS_DEPLOYMENT`: `local` (the default: embedded, works with no configuration) or `prod`."""
    value = os.environ.get(DEPLOYMENT_VAR) or DEPLOYMENTS[0]
    if value not in DEPLOYMENTS:
        raise ValueError(f"{DEPLOYMENT_VAR}={value!r} is not one of {', '.join(DEPLOYMENTS)}.")
    return value


def first_week() -> dt.date | None:
    """`ZEOS_FIRST_WEEK` (a Monday, ISO date): the first weekly partition; None when unset (the
    partitions then start at the lake's first drop)."""
    value = os.environ.get(FIRST_WEEK_VAR)
    if not value:
        return None
    week = dt.date.fromisoformat(value)
    if week.weekday() != 0:
        raise ValueError(f"{FIRST_WEEK_VAR}={value} is not a Monday.")
    return week


def sensor_interval_seconds() -> int:
    """`ZEOS_SENSOR_INTERVAL_SECONDS`: how often `landing_sensor` looks (default 60, at least 1)."""
    return _whole_number("ZEOS_SENSOR_INTERVAL_SECONDS", DEFAULT_SENSOR_INTERVAL_SECONDS, 1, 86_400)


def schedule_time() -> tuple[int, int]:
    """(`ZEOS_SCHEDULE_DAY` 0 = Sunday .. 6, `ZEOS_SCHEDULE_HOUR` 0..23) of the schedule."""
    return (
        _whole_number("ZEOS_SCHEDULE_DAY", DEFAULT_SCHEDULE_DAY, 0, 6),
        _whole_number("ZEOS_SCHEDULE_HOUR", DEFAULT_SCHEDULE_HOUR, 0, 23),
    )


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{name}={value!r} must be a whole number from {low} to {high}.")
    return int(value)
