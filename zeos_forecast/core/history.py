"""The least history a forecast is made from: below it the week is refused, not forecast from a
guess (and so never published)."""

from __future__ import annotations

import datetime as dt

__all__ = ["HistoryTooShortError", "require_history"]


class HistoryTooShortError(ValueError):
    """The window holds fewer weeks with sales rows than `min_history_weeks`.

    Attributes:
        weeks_with_sales: How many weeks of the window have sales rows.
    """

    def __init__(self, message: str, weeks_with_sales: int = 0) -> None:
        super().__init__(message)
        self.weeks_with_sales = weeks_with_sales


def require_history(
    weeks_with_sales: list[dt.date], origin: dt.date, window_weeks: int, minimum: int
) -> None:
    """Raises `HistoryTooShortError` when fewer than `minimum` weeks of the window have sales rows.

    Args:
        weeks_with_sales: The window's weeks that have at least one sales row.
        origin: The forecast origin (the window's last week).
        window_weeks: The window's length in weeks.
        minimum: The least number of such weeks (`ForecastSettings.min_history_weeks`).
    """
    if len(weeks_with_sales) >= minimum:
        return
    found = (
        f"{len(weeks_with_sales)} week{'s' if len(weeks_with_sales) != 1 else ''} "
        f"({min(weeks_with_sales)} .. {max(weeks_with_sales)})"
        if weeks_with_sales
        else "no week"
    )
    raise HistoryTooShortError(
        f"Too little history to forecast from {origin}: {found} of its {window_weeks}-week "
        f"window {'has' if len(weeks_with_sales) == 1 else 'have'} sales rows, at least "
        f"{minimum} are needed (min_history_weeks).\nDrop earlier weeks into landing/sales/, or "
        "lower the minimum (--min-history-weeks, or demand_features' min_history_weeks).",
        weeks_with_sales=len(weeks_with_sales),
    )
