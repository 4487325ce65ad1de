"""Pictures a planner would rather look at than read: fan charts of a few SKUs' forecasts, accuracy
by horizon and over weeks, weekly sales. Rendered to PNG bytes with matplotlib's Agg canvas (no
display, no pyplot state, safe in any thread); no Dagster here."""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .contract import KEY_COLUMNS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FAN_CHART_HISTORY_WEEKS",
    "RANDOM_SKUS",
    "TOP_SKUS",
    "SkuChoice",
    "SkuPicker",
    "accuracy_by_horizon_chart",
    "accuracy_over_weeks_chart",
    "fan_chart",
    "weekly_sales_chart",
]

# A handful of SKUs, whatever the number forecast: the chart stays readable and its cost flat.
TOP_SKUS = 3
RANDOM_SKUS = 3
# Weeks of history drawn left of the forecast: a year shows the season the forecast continues.
FAN_CHART_HISTORY_WEEKS = 52
# Small PNGs: every image travels inside the event log as base64 (about 60 KB each).
DPI = 80
OURS_COLOUR = "#1f5fa8"
# Up to this many weeks, each scored week gets its own tick (not days between them).
MAX_WEEK_TICKS = 12
HISTORY_COLOUR = "#333333"


@dataclass(frozen=True)
class SkuChoice:
    """One SKU drawn in the fan chart, and why it was chosen (`top 1`, `random`)."""

    article_id: str
    merchant_id: str
    reason: str


@dataclass
class SkuPicker:
    """Chooses the SKUs of the fan chart while the forecast streams past, batch by batch.

    Keeps the `top` SKUs with the largest total point forecast over the horizon and `random` SKUs
    drawn by a seeded hash of their keys (the same SKUs for the same seed, whatever the batch
    order or engine). Holds a few rows per batch, never the forecast: its cost is one pass over
    each batch's point column.
    """

    top: int = TOP_SKUS
    random: int = RANDOM_SKUS
    seed: int = 0
    _volumes: pd.DataFrame = field(default_factory=pd.DataFrame)
    _draws: pd.DataFrame = field(default_factory=pd.DataFrame)

    def add(self, forecast: pd.DataFrame) -> None:
        """Takes one batch of forecast rows: the rows of a SKU consecutive, horizon 1 first."""
        if forecast.empty:
            return
        starts = np.flatnonzero(forecast["horizon"].to_numpy() == 1)
        skus = forecast.iloc[starts][list(KEY_COLUMNS)].astype(str).reset_index(drop=True)
        volume = np.add.reduceat(forecast["forecast"].to_numpy(dtype="float64"), starts)
        hash_key = f"{self.seed:016d}"[-16:]
        draw = pd.util.hash_pandas_object(skus, index=False, hash_key=hash_key).to_numpy()
        kept = self.top + self.random  # enough draws left once the top SKUs are taken out
        self._volumes = _keep(self._volumes, skus.assign(value=volume), self.top, largest=True)
        self._draws = _keep(self._draws, skus.assign(value=draw), kept, largest=False)

    def chosen(self) -> list[SkuChoice]:
        """The top SKUs by forecast volume (largest first), then the random ones."""
        choices = [
            SkuChoice(row.article_id, row.merchant_id, f"top {rank} by forecast volume")
            for rank, row in enumerate(self._volumes.itertuples(), start=1)
        ]
        taken = {(c.article_id, c.merchant_id) for c in choices}
        for row in self._draws.itertuples():
            if len(choices) >= self.top + self.random:
                break
            if (row.article_id, row.merchant_id) not in taken:
                choices.append(SkuChoice(row.article_id, row.merchant_id, "random"))
        return choices


def _keep(kept: pd.DataFrame, new: pd.DataFrame, n: int, largest: bool) -> pd.DataFrame:
    both = pd.concat([kept, new], ignore_index=True) if not kept.empty else new
    ranked = both.nlargest(n, "value") if largest else both.nsmallest(n, "value")
    return ranked.reset_index(drop=True)


def fan_chart(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    choices: list[SkuChoice],
    origin: dt.date,
    band: tuple[str, str] = ("q10", "q90"),
) -> bytes:
    """One panel per chosen SKU: weekly demand up to `origin`, the point forecast after it and
    the band between two quantile columns.

    Args:
        history: The chosen SKUs' rows: keys, `week`, `demand` and optionally `censored`
            (stockout weeks are marked: their demand is an estimate).
        forecast: The chosen SKUs' forecast rows: keys, `week`, `forecast` and the `band` columns.
        choices: The SKUs, in panel order.
        origin: The forecast origin (the last observed week), drawn as a dotted line.
        band: The lower and upper quantile columns of the band.

    Returns:
        PNG bytes.
    """
    columns = 2 if len(choices) > 1 else 1
    rows = max(1, math.ceil(len(choices) / columns))
    height = 2.5 * rows + 0.4
    figure = _figure(figsize=(5.2 * columns, height))
    # Margins in inches (the title, the tick labels), whatever the number of rows.
    figure.subplots_adjust(
        left=0.06, right=0.98, bottom=0.4 / height, top=1 - 0.75 / height, hspace=0.55
    )
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    low, high = band
    for ax, choice in zip(axes, choices, strict=False):
        past = _rows_of(history, choice).sort_values("week")
        ahead = _rows_of(forecast, choice).sort_values("week")
        ax.plot(past["week"], past["demand"], color=HISTORY_COLOUR, lw=1.2, label="demand")
        if "censored" in past.columns and past["censored"].any():
            stockout = past.loc[past["censored"].astype(bool)]
            ax.plot(
                stockout["week"],
                stockout["demand"],
                "o",
                ms=3,
                color="#c0392b",
                label="stockout week (estimated)",
            )
        if low in ahead.columns and high in ahead.columns:
            ax.fill_between(
                ahead["week"],
                ahead[low],
                ahead[high],
                color=OURS_COLOUR,
                alpha=0.2,
                lw=0,
                label=f"{low}–{high}",
            )
        ax.plot(ahead["week"], ahead["forecast"], color=OURS_COLOUR, lw=1.8, label="forecast")
        ax.axvline(pd.Timestamp(origin), color="#888888", ls=":", lw=1)
        ax.set_title(f"{choice.article_id} @ {choice.merchant_id} ({choice.reason})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    for ax in axes[len(choices) :]:
        ax.set_visible(False)
    if choices:
        axes[0].legend(fontsize=7, loc="upper left")
    figure.suptitle(f"Demand forecast from origin {origin} (units per week)", fontsize=10)
    return _png(figure)


def accuracy_by_horizon_chart(by_horizon: pd.DataFrame, ours: str, metric: str = "wape") -> bytes:
    """`metric` (a fraction, drawn in %) per horizon, one line per model, ours in bold.

    Args:
        by_horizon: One row per model and horizon: `model`, `horizon`, `metric`.
        ours: Our model's name (drawn in bold, first in the legend).
    """
    figure = _figure(figsize=(7, 3.6))
    ax = figure.subplots()
    for model, rows in _models_first(by_horizon, ours):
        rows = rows.sort_values("horizon")
        bold = model == ours
        ax.plot(
            rows["horizon"],
            100 * rows[metric],
            marker="o",
            ms=3,
            lw=2.2 if bold else 1,
            color=OURS_COLOUR if bold else None,
            label=model,
        )
    ax.set_xlabel("horizon (weeks ahead)")
    ax.set_ylabel(f"{metric.upper()} %")
    ax.set_xticks(sorted(by_horizon["horizon"].unique()))
    ax.legend(fontsize=8)
    ax.set_title(f"{metric.upper()} by horizon, ours against the baselines (lower is better)")
    return _png(figure)


def accuracy_over_weeks_chart(by_week: pd.DataFrame, ours: str, metric: str = "wape") -> bytes:
    """`metric` (a fraction, drawn in %) per scored week, one line per model, ours in bold.

    Args:
        by_week: One row per model and week: `model`, `week`, `metric`.
        ours: Our model's name.
    """
    figure = _figure(figsize=(7, 3.6))
    ax = figure.subplots()
    for model, rows in _models_first(by_week, ours):
        rows = rows.sort_values("week")
        bold = model == ours
        ax.plot(
            pd.to_datetime(rows["week"]),
            100 * rows[metric],
            marker="o",
            ms=3,
            lw=2.2 if bold else 1,
            color=OURS_COLOUR if bold else None,
            label=model,
        )
    weeks = sorted(pd.to_datetime(by_week["week"]).unique())
    if len(weeks) <= MAX_WEEK_TICKS:
        ax.set_xticks(weeks, [f"{w:%Y-%m-%d}" for w in weeks])
    ax.set_xlabel("week scored (partition)")
    ax.set_ylabel(f"{metric.upper()} %")
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    figure.subplots_adjust(bottom=0.27)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric.upper()} of the forecasts of each week, all horizons (lower is better)")
    return _png(figure)


def weekly_sales_chart(weekly: pd.DataFrame) -> bytes:
    """Units sold and SKUs with a row per week (`week`, `units_sold`, `skus`), on two axes."""
    figure = _figure(figsize=(7, 3.2))
    ax = figure.subplots()
    weeks = pd.to_datetime(weekly["week"])
    ax.plot(weeks, weekly["units_sold"], color=HISTORY_COLOUR, lw=1.4, label="units sold")
    ax.set_ylabel("units sold")
    ax.set_ylim(bottom=0)
    skus = ax.twinx()
    skus.plot(weeks, weekly["skus"], color=OURS_COLOUR, lw=1, ls="--", label="SKUs with a row")
    skus.set_ylabel("SKUs with a row")
    skus.set_ylim(bottom=0)
    ax.tick_params(axis="x", labelsize=7)
    lines = [*ax.get_lines(), *skus.get_lines()]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower right")
    ax.set_title("Weekly sales of the weeks this run validated (one point per partition)")
    return _png(figure)


def _models_first(frame: pd.DataFrame, ours: str):
    models = sorted(frame["model"].unique(), key=lambda m: (m != ours, m))
    return [(m, frame.loc[frame["model"] == m]) for m in models]


def _rows_of(frame: pd.DataFrame, choice: SkuChoice) -> pd.DataFrame:
    if frame.empty:
        return frame
    article, merchant = (frame[c].astype(str) for c in KEY_COLUMNS)
    rows = frame.loc[(article == choice.article_id) & (merchant == choice.merchant_id)]
    return rows.assign(week=pd.to_datetime(rows["week"]))


def _figure(figsize: tuple[float, float]) -> Figure:
    # matplotlib loads with the first picture, not with the code location that every webserver,
    # daemon and run process imports. Fixed margins, not a layout engine: half the render time.
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    figure.subplots_adjust(left=0.1, right=0.9, bottom=0.15, top=0.9)
    return figure


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # the Agg canvas renders it: no display, no pyplot state
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
