"""`sales_history`: each week's landing drop, validated against the contract, plus demand."""

import time

import dagster as dg
import pyarrow as pa

from ..core.contract import LandingDataError, validate_sales_drop
from ..core.demand import derive_demand
from ..core.progress import Progress
from .metadata import peak_memory_mb, preview
from .partitions import weekly_partitions, weeks_in_window
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure

__all__ = ["SALES_HISTORY", "sales_history"]

SALES_HISTORY = "sales_history"


@dg.asset(
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STEP_RETRY_POLICY,
    group_name="demand",
    kinds={"parquet", "pandas"},
)
def sales_history(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One week of validated sales per partition, with demand derived from stock availability.

    Reads `landing/sales/week=W/` (parquet or CSV, complete once `_SUCCESS` is there), checks it
    against the contract, marks weeks with availability < 1 as censored and estimates their demand,
    and writes `sales_history/week=W/part-0.parquet`. A range of weeks runs in one run. The landing
    files are only read.
    """
    store = lake.open()
    weeks = weeks_in_window(context.partition_time_window)
    started = time.perf_counter()
    progress = Progress("validating weekly drops", len(weeks), "weeks", context.log.info)
    rows = censored = 0
    last = None
    for week in weeks:
        try:
            files = store.read_sales_drop(week)
            drop = validate_sales_drop([(f.path, f.frame) for f in files], week)
        except LandingDataError as error:
            raise landing_failure(error) from error
        except FileNotFoundError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
        last = derive_demand(drop).drop(columns="week")
        store.write_partition(
            SALES_HISTORY, "week", week, pa.Table.from_pandas(last, preserve_index=False)
        )
        rows += len(last)
        censored += int(last["censored"].sum())
        progress.advance()
    assert last is not None
    return dg.MaterializeResult(
        metadata={
            "weeks": len(weeks),
            "rows": rows,
            "skus_last_week": len(last),
            "censored_share": round(censored / max(rows, 1), 4),
            "units_sold_last_week": float(last["units_sold"].sum()),
            "seconds": round(time.perf_counter() - started, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of(SALES_HISTORY)),
            "preview_last_week": preview(last),
        }
    )
