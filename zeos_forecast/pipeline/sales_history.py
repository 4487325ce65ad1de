"""`sales_history`: each week's landing drop, validated against the contract, plus demand."""

import datetime as dt
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.contract import LandingDataError, validate_sales_drop
from ..core.contract_arrow import SKU_ORDER, validate_sales_tables
from ..core.demand import derive_demand_table
from ..core.plots import weekly_sales_chart
from ..core.progress import Progress
from ..drops import IDENTITY_FOOTER_KEY, SAFE_REDROP_HINT, DropChangedError
from ..storage import LANDING_SALES, SALES_HISTORY, Lake
from .conventions import TABLE_SCHEMAS, with_row_count_and_uri
from .instance import ForecastInstance
from .metadata import PREVIEW_ROWS, peak_memory_mb, picture, preview
from .partitions import weeks_in_window
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure

__all__ = ["HISTORY_ROW_GROUP_ROWS", "SALES_HISTORY", "sales_history", "sales_history_asset"]

# Row groups small enough that a reader of a SKU range (the partition is sorted by SKU) skips
# most of a week by the groups' statistics. A feature shard's slice of one week is about
# 15,000 rows at 1M SKUs; with groups of 128Ki rows each shard decoded about 9 times the rows
# it kept (100,000 SKUs, a tenth of the articles: 2.66 s of CPU with 128Ki-row groups, 1.54 s
# with 16Ki).
HISTORY_ROW_GROUP_ROWS = 16 * 1024
# Weeks of a range read and validated at once (with the one being written, three weeks in memory).
READ_AHEAD_WEEKS = 2


def sales_history_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`sales_history` of an instance: its key, partitions and lake."""
    with warnings.catch_warnings():
        # `backfill_policy` is beta in Dagster 1.13; a range of weeks validated in one run is
        # what makes a backlog of years one run instead of hundreds.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _sales_history_asset(instance)


def _sales_history_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    @dg.asset(
        key=instance.key(SALES_HISTORY),
        required_resource_keys={instance.name("lake")},
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=STEP_RETRY_POLICY,
        kinds={"parquet", "pandas"},
        **instance.asset_attributes("demand", sales_history, TABLE_SCHEMAS[SALES_HISTORY]),
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return with_row_count_and_uri(sales_history(context, instance.resource(context, "lake")))

    return _asset


def sales_history(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One week of validated sales per partition, with demand derived from stock availability.

    Reads `landing/sales/week=W/` (parquet or CSV, complete once `_SUCCESS` is there), checks it
    against the contract, marks weeks with availability < 1 as censored and estimates their demand,
    and writes `sales_history/week=W/part-0.parquet`, sorted by (article_id, merchant_id). A range
    of weeks runs in one run. The landing files are only read. A run of several weeks shows their
    units and SKUs per week in one picture (`weekly_sales`): one point per partition.
    """
    store = lake.open()
    weeks = weeks_in_window(context.partition_time_window)
    started = time.perf_counter()
    progress = Progress("validating weekly drops", len(weeks), "weeks", context.log.info)
    rows = censored = 0
    last = None
    weekly = []
    # Weeks are read and validated `READ_AHEAD_WEEKS` at a time, and each is written while later
    # ones are read: all of it runs in Arrow's C++ code, which releases the GIL. Weeks are taken,
    # and written, in week order, one write at a time.
    with (
        ThreadPoolExecutor(
            max_workers=READ_AHEAD_WEEKS, thread_name_prefix="sales-history-read"
        ) as readers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="sales-history-write") as writer,
    ):
        reads: deque[Future] = deque()
        written: Future | None = None
        upcoming = iter(weeks)
        for week in weeks:
            while len(reads) < READ_AHEAD_WEEKS and (ahead := next(upcoming, None)) is not None:
                reads.append(readers.submit(_history_week, store, ahead))
            try:
                last = reads.popleft().result()
            except BaseException:
                for read in reads:  # nothing after a bad week is read any further
                    read.cancel()
                raise
            finally:
                # The weeks before a bad one are written (or the failure of their write is raised).
                _wait(written)
            written = writer.submit(
                store.write_partition,
                SALES_HISTORY,
                "week",
                week,
                last,
                row_group_rows=HISTORY_ROW_GROUP_ROWS,
            )
            rows += last.num_rows
            censored += pc.sum(last["censored"]).as_py()
            units = pc.sum(last["units_sold"]).as_py() or 0.0
            weekly.append({"week": week, "units_sold": units, "skus": last.num_rows})
            progress.advance()
        _wait(written)
    assert last is not None
    return dg.MaterializeResult(
        metadata={
            "weeks": len(weeks),
            "rows": rows,
            "skus_last_week": last.num_rows,
            "censored_share": round(censored / max(rows, 1), 4),
            "units_sold_last_week": float(pc.sum(last["units_sold"]).as_py()),
            "seconds": round(time.perf_counter() - started, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of(SALES_HISTORY)),
            "lake": store.uri,
            "preview_last_week": preview(last.slice(0, PREVIEW_ROWS).to_pandas()),
            **_weekly_picture(weekly),
        }
    )


def _weekly_picture(weekly: list[dict]) -> dict[str, dg.MetadataValue]:
    """Units and SKUs per week of a range run (a one-week run has nothing to draw)."""
    if len(weekly) < 2:
        return {}
    frame = pd.DataFrame(weekly)
    alt = f"units and SKUs per week, {weekly[0]['week']} .. {weekly[-1]['week']}"
    return {"weekly_sales": picture(weekly_sales_chart(frame), alt)}


def _history_week(store: Lake, week: dt.date) -> pa.Table:
    """The `sales_history` partition of `week`: its drop validated, sorted by SKU, with demand.

    The file's footer records the content identity of the drop it was made from, so that a run
    planner can tell whether the drop changed since (`IDENTITY_FOOTER_KEY`).
    """
    try:
        drop, identity = _validated_drop(store, week)
    except LandingDataError as error:
        raise landing_failure(error) from error
    except FileNotFoundError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error
    table = derive_demand_table(drop.drop_columns("week"))
    return table.replace_schema_metadata({IDENTITY_FOOTER_KEY: identity})


def _validated_drop(store: Lake, week: dt.date) -> tuple[pa.Table, str]:
    """The week's drop, validated and sorted by SKU, and the content identity of what was read.

    Arrow's checks vouch for a drop of well-formed parquet files. Any other drop (CSV, unusual
    types, a broken rule) is validated as pandas reads it (its parquet files are read again for
    that), which accepts it or names the file, column and rows exactly. Each read is one
    snapshot of the drop; two reads that saw different drops fail (`DropChangedError`).
    """
    snapshot = store.read_drop_snapshot(LANDING_SALES, week, parquet_as_tables=True)
    files = snapshot.files
    tables = [(f.path, f.frame) for f in files if isinstance(f.frame, pa.Table)]
    if tables and len(tables) == len(files):
        validated = validate_sales_tables(tables, week)
        if validated is not None:
            return validated, snapshot.identity
    if tables:
        again = store.read_drop_snapshot(LANDING_SALES, week)
        if again.identity != snapshot.identity:
            folder = store.uri_of_path(store.sales_drop_dir(week))
            raise DropChangedError(
                folder, "*", "the drop changed between two reads of it", hint=SAFE_REDROP_HINT
            )
        files = again.files
    drop = validate_sales_drop([(f.path, f.frame) for f in files], week)
    table = pa.Table.from_pandas(drop, preserve_index=False).replace_schema_metadata()
    return table.sort_by(SKU_ORDER), snapshot.identity


def _wait(write: Future | None) -> None:
    if write is not None:
        write.result()
