"""`zeos-forecast demo`: generated data into a local lake, the whole graph for the latest week."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import pandas as pd

from .datasets.landing import write_landing_stream
from .datasets.synthetic import latest_complete_week, stream_panel
from .pipeline.demand_forecast import DEMAND_FORECAST
from .pipeline.deployment import open_lake
from .pipeline.launch import WeekRun, dagster_instance, forecast_week
from .pipeline.published_forecast import LATEST_FORECAST
from .storage import Lake

__all__ = ["DemoSize", "generate", "latest_complete_week", "run_demo"]


@dataclass(frozen=True)
class DemoSize:
    """How much data the demo generates (small enough for a laptop in a few minutes)."""

    skus: int = 5_000
    weeks: int = 156
    seed: int = 0


def generate(
    lake: Lake, skus: int, weeks: int, last_week: dt.date, seed: int = 0, report=print
) -> tuple[int, float]:
    """Generates synthetic demand and writes it to the landing zone; returns (rows, seconds).

    Streamed: one chunk of SKUs is in memory at a time, so any number of SKUs fits in a few GiB.
    """
    started = time.perf_counter()
    stream = stream_panel(skus, weeks, last_week, seed=seed)
    rows = write_landing_stream(stream, lake, report=report)
    return rows, time.perf_counter() - started


def run_demo(lake_root: str, size: DemoSize = DemoSize(), report=print) -> WeekRun:
    """Generates data (unless the week's drop is already there) and forecasts the latest week."""
    lake = open_lake(lake_root)
    week = latest_complete_week()
    if week in lake.sales_drop_weeks():
        report(f"Landing zone already has the drop for {week}: reusing {lake.uri}/landing.")
        generated = None
    else:
        report(
            f"Generating {size.skus:,} SKUs x {size.weeks} weeks ending {week} into "
            f"{lake.uri}/landing ..."
        )
        generated = generate(lake, size.skus, size.weeks, week, size.seed, report)
    started = time.perf_counter()
    outcome = forecast_week(week, lake_root, dagster_instance(), report=report)
    report(summary(lake, outcome, generated, time.perf_counter() - started))
    return outcome


def summary(
    lake: Lake, outcome: WeekRun, generated: tuple[int, float] | None, seconds: float
) -> str:
    """A short account of what was written where, for a person at a terminal."""
    features = outcome.metadata.get("demand_features", {})
    forecast = outcome.metadata.get(DEMAND_FORECAST, {})
    history = outcome.metadata.get("sales_history", {})
    table = lake.read_partition(DEMAND_FORECAST, "forecast_week", outcome.week)
    stages = [
        ("generate landing data", generated[1] if generated else None),
        ("sales_history (validate + demand)", history.get("seconds")),
        ("demand_features", features.get("seconds")),
    ]
    stages += [
        (f"demand_forecast: {k.removeprefix('seconds_')}", v)
        for k, v in forecast.items()
        if k.startswith("seconds_")
    ]
    lines = [
        "",
        f"Forecast origin week      {outcome.week}  (horizon {forecast.get('horizon')} weeks)",
        f"SKUs                      {features.get('skus', 0):,} in history, "
        f"{forecast.get('skus_scored', 0):,} active and forecast",
        f"Weeks of history          {features.get('weeks_of_history')}"
        + (
            f" ({outcome.history_weeks_validated} weekly drops validated)"
            if outcome.history_weeks_validated
            else ""
        ),
        f"Training rows             {forecast.get('train_rows', 0):,}",
        f"Model target              {forecast.get('target', '')}",
        f"Forecast rows             {len(table):,}",
        "Seconds per stage:",
        *(f"  {name:<34}{value:8.1f}" for name, value in stages if value is not None),
        f"  {'total (through Dagster)':<34}{seconds:8.1f}",
        f"Forecast table            {lake.uri_of(DEMAND_FORECAST)}/forecast_week={outcome.week}/",
        f"Published (checks passed) {lake.uri_of(LATEST_FORECAST)}/",
        f"Dagster runs              {', '.join(outcome.run_ids)}  (see them with `make dev`)",
        "",
        _first_rows(table),
    ]
    return "\n".join(lines)


def _first_rows(table: pd.DataFrame, skus: int = 2) -> str:
    first = table.drop_duplicates(["article_id", "merchant_id"]).head(skus)
    rows = table.merge(first[["article_id", "merchant_id"]]).drop(columns="run_id")
    return (
        rows.groupby(["article_id", "merchant_id"])
        .head(4)
        .to_string(index=False, float_format="%.2f")
    )
