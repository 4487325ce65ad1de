"""Pictures for the UI: reads the few rows a picture needs, renders it (`core/plots.py`), writes the
PNG beside the partition and returns the metadata that shows it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import dagster as dg
import pandas as pd

from ..core import plots
from ..core.accuracy import summarize
from ..core.contract import KEY_COLUMNS
from ..storage import Lake
from .metadata import picture

__all__ = ["FAN_CHART_FILE", "accuracy_pictures", "fan_chart_picture"]

FAN_CHART_FILE = "_fan_chart.png"
ACCURACY_BY_HORIZON_FILE = "_accuracy_by_horizon.png"
ACCURACY_OVER_WEEKS_FILE = "_accuracy_over_weeks.png"
# Weeks of accuracy drawn up to the partition's own: a year of scored weeks.
ACCURACY_WEEKS = 52


def fan_chart_picture(
    store: Lake,
    history_dataset: str,
    dataset: str,
    key: str,
    origin: dt.date,
    choices: list[plots.SkuChoice],
    quantile_columns: list[str],
) -> dict[str, Any]:
    """The fan chart of the chosen SKUs, from their rows only (never the whole history).

    Reads each SKU's last `FAN_CHART_HISTORY_WEEKS` weeks of `history_dataset` (weekly partitions
    by `week`) and its rows of the forecast partition just written; both are sorted by SKU, so
    each read touches one row group per file. Writes `<dataset>/<key>=<origin>/_fan_chart.png`.
    """
    started = time.perf_counter()
    if not choices:
        return {}
    first = origin - dt.timedelta(weeks=plots.FAN_CHART_HISTORY_WEEKS - 1)
    history = _rows_of_skus(
        store,
        history_dataset,
        "week",
        first,
        origin,
        choices,
        [*KEY_COLUMNS, "week", "demand", "censored"],
    )
    band = (quantile_columns[0], quantile_columns[-1])
    forecast = _rows_of_skus(
        store, dataset, key, origin, origin, choices, [*KEY_COLUMNS, "week", "forecast", *band]
    )
    png = plots.fan_chart(history, forecast, choices, origin, band)
    path = store.write_partition_file(dataset, key, origin, FAN_CHART_FILE, png)
    return {
        "fan_chart": picture(png, f"fan chart of {len(choices)} SKUs from {origin}"),
        "fan_chart_skus": ", ".join(
            f"{c.article_id}@{c.merchant_id} ({c.reason})" for c in choices
        ),
        "fan_chart_path": dg.MetadataValue.path(store.uri_of_path(path)),
        "seconds_pictures": round(time.perf_counter() - started, 2),
    }


def accuracy_pictures(
    store: Lake, dataset: str, week: dt.date, by_horizon: pd.DataFrame, ours: str
) -> dict[str, Any]:
    """WAPE by horizon for this week's forecasts, and WAPE over the scored weeks up to this one.

    The weeks come from the accuracy partitions already written (additive components, one row
    per origin, horizon and model: a year of them is small). Writes both PNGs beside the
    partition of `week`.
    """
    started = time.perf_counter()
    first = week - dt.timedelta(weeks=ACCURACY_WEEKS - 1)
    components = store.read_window(dataset, "week", first, week)
    by_week = summarize(components, ["week", "model"]) if not components.empty else components
    entries: dict[str, Any] = {}
    drawn = [
        ("accuracy_by_horizon", ACCURACY_BY_HORIZON_FILE, by_horizon,
         plots.accuracy_by_horizon_chart, f"WAPE by horizon of the forecasts of {week}"),
        ("accuracy_over_weeks", ACCURACY_OVER_WEEKS_FILE, by_week,
         plots.accuracy_over_weeks_chart, f"WAPE of the weeks up to {week}"),
    ]  # fmt: skip
    for name, file, frame, chart, alt in drawn:
        if frame.empty:
            continue
        png = chart(frame, ours)
        store.write_partition_file(dataset, "week", week, file, png)
        entries[name] = picture(png, alt)
    entries["seconds_pictures"] = round(time.perf_counter() - started, 2)
    return entries


def _rows_of_skus(
    store: Lake,
    dataset: str,
    key: str,
    first: dt.date,
    last: dt.date,
    choices: list[plots.SkuChoice],
    columns: list[str],
) -> pd.DataFrame:
    """The rows of a few SKUs in partitions `first..last`, one pruned read per SKU."""
    window = store.open_window(dataset, key, first, last)
    if window is None:
        return pd.DataFrame(columns=columns)
    frames = [
        store.read_window(
            dataset,
            key,
            first,
            last,
            columns=columns,
            # The files are sorted by article: its bounds skip every other row group.
            ranges={"article_id": (c.article_id, c.article_id + "\0")},
            equals={"article_id": c.article_id, "merchant_id": c.merchant_id},
            window=window,
        )
        for c in choices
    ]
    return pd.concat(frames, ignore_index=True)
