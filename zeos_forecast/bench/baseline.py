"""The baseline of `bench scale`: plain mlforecast on the whole history in one pandas frame.

What a user without this project would write, as the issue measured it: every weekly sales drop
read into one frame with integer series ids and a float32 target (units sold), one LightGBM
model (100 trees, 63 leaves) with lags 1/2/4/8/52, rolling means 4 and 12 and an expanding mean
of last week's sales, week-of-year and month, fitted on all of it, then a recursive forecast of
the next `horizon` weeks. Run as its own process, so that its memory is measured alone:

    python -m zeos_forecast.bench.baseline --lake L --horizon 12 --out DIR

writes `DIR/forecast.parquet` (article_id, merchant_id, week, forecast) and `DIR/baseline.json`
(seconds of read, fit and predict; rows of history and rows trained).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from mlforecast import MLForecast
from mlforecast.lag_transforms import ExpandingMean, RollingMean

from ..storage import Lake

__all__ = ["LAGS", "ROLLING_WINDOWS", "main", "read_history", "run_baseline", "week_of_year"]

LAGS = [1, 2, 4, 8, 52]
ROLLING_WINDOWS = [4, 12]
NUM_LEAVES = 63
FREQ = "W-MON"  # weeks are named by their Monday
KEY = ["article_id", "merchant_id"]
MODEL = "lgbm"


def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
    """ISO week number (pandas 2 has no `DatetimeIndex.week`)."""
    return pd.DatetimeIndex(dates).isocalendar().week.to_numpy(dtype=np.uint8)


def read_history(lake_root: Path) -> tuple[pd.DataFrame, pa.Table]:
    """Every complete sales drop of the lake in one frame, as a plain mlforecast user holds it.

    Returns:
        The frame (`unique_id` int32, `ds` the week's Monday, `y` units sold as float32) and
        the SKU keys (`article_id`, `merchant_id`) of each `unique_id` (its row number).
    """
    lake = Lake(str(lake_root))
    files = sorted(
        str(path)
        for week in lake.sales_drop_weeks()
        for path in Path(lake.sales_drop_dir(week)).glob("*.parquet")
    )
    table = pads.dataset(files, format="parquet").to_table(columns=[*KEY, "week", "units_sold"])
    skus = table.group_by(KEY).aggregate([])
    skus = skus.append_column("unique_id", pa.array(np.arange(len(skus), dtype=np.int32)))
    table = table.join(skus, keys=KEY).drop_columns(KEY)
    frame = pd.DataFrame(
        {
            "unique_id": table["unique_id"].to_numpy(),
            "ds": table["week"].cast(pa.timestamp("ns")).to_numpy(),
            "y": table["units_sold"].cast(pa.float32()).to_numpy(),
        }
    )
    return frame, skus


def run_baseline(
    lake_root: Path, horizon: int, n_estimators: int, threads: int
) -> tuple[pd.DataFrame, dict]:
    """Reads the history, fits and forecasts `horizon` weeks.

    Returns:
        The forecast (article_id, merchant_id, week, forecast) and a report: seconds of each
        step, rows of history, series and rows trained.
    """
    started = time.perf_counter()
    frame, skus = read_history(lake_root)
    # Hand the read's Arrow buffers back to the system: the fit must not pay for them.
    pa.default_memory_pool().release_unused()
    read_seconds = time.perf_counter() - started
    model = lgb.LGBMRegressor(
        n_estimators=n_estimators, num_leaves=NUM_LEAVES, n_jobs=threads, verbosity=-1
    )
    forecaster = MLForecast(
        models={MODEL: model},
        freq=FREQ,
        lags=LAGS,
        lag_transforms={
            1: [*(RollingMean(window_size=w) for w in ROLLING_WINDOWS), ExpandingMean()]
        },
        date_features=[week_of_year, "month"],
        num_threads=threads,
    )
    started = time.perf_counter()
    # `fit` is exactly these two steps; split, so that the rows the model saw can be counted.
    features, target = forecaster.preprocess(frame, static_features=[], return_X_y=True)
    forecaster.fit_models(features, target)
    rows_trained = len(target)
    del features, target
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = forecaster.predict(horizon)
    predict_seconds = time.perf_counter() - started
    ids = predicted["unique_id"].to_numpy()
    forecast = pd.DataFrame(
        {
            "article_id": skus["article_id"].to_numpy()[ids],
            "merchant_id": skus["merchant_id"].to_numpy()[ids],
            "week": predicted["ds"].dt.date,
            "forecast": predicted[MODEL].to_numpy(),
        }
    )
    report = {
        "read_seconds": round(read_seconds, 2),
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "history_rows": len(frame),
        "series": len(skus),
        "rows_trained": rows_trained,
    }
    return forecast, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zeos_forecast.bench.baseline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--lake", type=Path, required=True, help="lake root (local)")
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    args = parser.parse_args(argv)
    forecast, report = run_baseline(args.lake, args.horizon, args.n_estimators, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    forecast.to_parquet(args.out / "forecast.parquet", index=False)
    (args.out / "baseline.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
