"""Writes one large forecast partition through `Lake.write_partition`, in a process of its own.

`python partition_writer.py LAKE WEEK ROWS SEED` builds a forecast-shaped table of ROWS rows
(different for every SEED) and replaces `demand_forecast/forecast_week=WEEK/part-0.parquet` with
it, exactly as `demand_forecast` does. A test starts it and kills it while it writes: a real
forecast run of test size writes its partition in milliseconds, too short to aim a kill at.
"""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from zeos_forecast.storage import Lake

DATASET, KEY = "demand_forecast", "forecast_week"


def forecast_table(rows: int, seed: int) -> pa.Table:
    """Random values compress badly, so the file is large and takes a while to write."""
    rng = np.random.default_rng(seed)
    numbers = pa.array(np.arange(rows)).cast(pa.string())
    values = {name: rng.random(rows) * 10 for name in ("forecast", "q10", "q50", "q90")}
    return pa.table(
        {
            "article_id": pc.binary_join_element_wise("A", numbers, ""),
            "merchant_id": pa.array(rng.integers(0, 50, rows)).cast(pa.string()),
            "horizon": pa.array(rng.integers(1, 13, rows), pa.int64()),
            **values,
            "run_id": pa.array([f"writer-{seed}"] * rows),
        }
    )


def main(argv: list[str]) -> int:
    root, week, rows, seed = argv
    table = forecast_table(int(rows), int(seed))
    Lake(root).write_partition(DATASET, KEY, dt.date.fromisoformat(week), table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
