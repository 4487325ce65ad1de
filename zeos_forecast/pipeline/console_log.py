"""How much of Dagster's console log the runs launched from this process print (the command
line's --quiet / --verbose). Free of Dagster, so the command line sets it before the definitions
load."""

from __future__ import annotations

__all__ = ["CONSOLE_LOG_LEVELS", "console_log_level", "set_console_log_level"]

CONSOLE_LOG_LEVELS = ("DEBUG", "INFO", "WARNING")
_chosen = {"level": "INFO"}


def set_console_log_level(level: str) -> None:
    """Dagster's console log level for the runs launched from now on in this process."""
    if level not in CONSOLE_LOG_LEVELS:
        raise ValueError(f"Console log level {level!r} is not one of {CONSOLE_LOG_LEVELS}.")
    _chosen["level"] = level


def console_log_level() -> str:
    return _chosen["level"]
