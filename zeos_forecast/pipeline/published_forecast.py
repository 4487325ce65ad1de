"""`published_forecast`: the forecast consumers read. It moves only when the blocking checks pass.

Two datasets. `published_forecast/forecast_week=W/part-0.parquet` holds every published week,
Hive-partitioned like the other derived datasets. `published_forecast_latest/part-0.parquet` holds
the newest published week, with a `forecast_week` column. The latest file sits outside the
partitioned folder on purpose. A `latest/` folder inside it would break the usual history read:
DuckDB's `hive_partitioning` fails on the mixed folders, and pyarrow reads the newest week twice.

`latest` never moves back to an older week: publication runs in the instance's concurrency pool
(`published_forecast`, one slot: docs/deployment.md), and a run that finds a newer week in the
latest file leaves it as it is, whatever its listing of published weeks said a moment before.
"""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from .checks import FORECAST_CHECKS
from .conventions import forecast_schema, with_row_count_and_uri
from .demand_features import ORIGIN_KEY
from .demand_forecast import DEMAND_FORECAST
from .instance import ForecastInstance, sibling_key
from .metadata import PREVIEW_ROWS, preview
from .partitions import partition_week
from .resources import LakeResource
from .retries import STEP_RETRY_POLICY

__all__ = [
    "LATEST_FORECAST",
    "PUBLISHED_FORECAST",
    "published_forecast",
    "published_forecast_asset",
]

PUBLISHED_FORECAST = "published_forecast"
LATEST_FORECAST = "published_forecast_latest"
# Check evaluations read per page while looking for the latest of each check.
CHECK_RECORDS_PAGE = 100


def published_forecast_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`published_forecast` of an instance, expected fresh by its weekly deadline."""
    columns = forecast_schema(instance.settings.forecast.quantile_columns)

    @dg.asset(
        key=instance.key(PUBLISHED_FORECAST),
        deps=[instance.key(DEMAND_FORECAST)],
        required_resource_keys={instance.name("lake")},
        retry_policy=STEP_RETRY_POLICY,
        kinds={"parquet"},
        freshness_policy=_freshness(instance.settings.publication_deadline_cron),
        # One publishing step at a time per instance (a limit of 1 in the Dagster instance):
        # two runs racing could otherwise each list the weeks before the other wrote its own.
        pool=instance.name(PUBLISHED_FORECAST),
        **instance.asset_attributes("forecast", published_forecast, columns),
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        lake = instance.resource(context, "lake")
        return with_row_count_and_uri(published_forecast(context, lake))

    return _asset


def _freshness(deadline_cron: str | None) -> dg.FreshnessPolicy | None:
    """Fresh when a forecast was published in the week before each deadline (None: no policy)."""
    if deadline_cron is None:
        return None
    return dg.FreshnessPolicy.cron(
        deadline_cron=deadline_cron, lower_bound_delta=dt.timedelta(weeks=1)
    )


def published_forecast(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    """The forecast planners read: every published origin week, and the latest one on its own.

    Copies `demand_forecast` of W to `published_forecast/forecast_week=W/part-0.parquet` and, when
    W is the newest published week, atomically replaces `published_forecast_latest/part-0.parquet`
    (same columns plus `forecast_week`). Publishes only a forecast whose blocking checks passed:
    in a run with the checks, a failed check skips this asset; in a run without them, the instance
    must hold passed checks for the partition's latest forecast, or nothing is written. The two
    files are written side by side, each atomically: when one write fails, the step fails (and
    is retried) while the other file may already hold the new forecast.
    """
    store = lake.open()
    origin = partition_week(context.partition_key)
    # Arrow from end to end: millions of rows never become Python strings.
    table = store.read_partition_table(DEMAND_FORECAST, ORIGIN_KEY, origin)
    run_ids = {str(run_id) for run_id in pc.unique(table["run_id"]).to_pylist()}
    forecast_key = sibling_key(context.asset_key, DEMAND_FORECAST)
    unchecked, evaluations = _blocking_checks(
        context.instance, forecast_key, context.partition_key, run_ids
    )
    if unchecked:
        raise dg.Failure(
            description=(
                f"Not publishing the forecast of {origin}: its blocking checks have not passed "
                f"on its latest materialization ({'; '.join(unchecked)}). Materialize "
                "demand_forecast with its checks for this week first."
            ),
            metadata={"checks": "; ".join(unchecked)},
            allow_retries=False,
        )
    published = set(store.partitions(PUBLISHED_FORECAST, ORIGIN_KEY)) | {origin}
    # The week the latest file holds now counts too: a newer one is never replaced by this one.
    in_latest = store.file_column_max(LATEST_FORECAST, ORIGIN_KEY)
    latest_week = max(published | ({in_latest} if in_latest else set()))
    # Both files at once: encoding parquet holds one core each (1M SKUs: 9.0 s one after the
    # other, 4.2 s side by side).
    with ThreadPoolExecutor(max_workers=2) as writers:
        written = writers.submit(
            store.write_partition, PUBLISHED_FORECAST, ORIGIN_KEY, origin, table
        )
        if origin == latest_week:
            week_column = pa.repeat(pa.scalar(origin, pa.date32()), table.num_rows)
            with_week = table.append_column(ORIGIN_KEY, week_column)
            latest = writers.submit(store.write_file, LATEST_FORECAST, with_week).result()
            latest_path = dg.MetadataValue.path(store.uri_of_path(latest))
        else:
            latest_path = f"not replaced: {latest_week} is newer"
        path = written.result()
    coverage = evaluations["covers_active_skus"].metadata
    return dg.MaterializeResult(
        metadata={
            "forecast_week": origin.isoformat(),
            "rows": table.num_rows,
            "skus": coverage["forecast_skus"].value,  # counted by the passed check on this file
            "forecast_run_id": ", ".join(sorted(run_ids)),
            "published_weeks": len(published),
            "latest_week": latest_week.isoformat(),
            "path": dg.MetadataValue.path(store.uri_of_path(path)),
            "latest_path": latest_path,
            "preview": preview(table.slice(0, PREVIEW_ROWS).drop(["run_id"]).to_pandas()),
        }
    )


def _blocking_checks(
    instance: dg.DagsterInstance, forecast_key: dg.AssetKey, partition: str, run_ids: set[str]
) -> tuple[list[str], dict[str, dg.AssetCheckEvaluation]]:
    """Why the forecast file (written by `run_ids`) is not known to have passed its checks, and
    the evaluations of the checks that did pass on it.

    The file must come from the partition's latest recorded materialization, and every blocking
    check must have passed on that materialization. In a run with the checks, Dagster already
    skips this asset when one fails; this also holds when it is materialized on its own.
    """
    materializations = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=forecast_key, asset_partitions=[partition]), limit=1
    ).records
    if not materializations:
        return [f"demand_forecast has no recorded materialization for {partition}"], {}
    latest = materializations[0]
    if run_ids != {latest.run_id}:
        return [
            f"the file was written by run {', '.join(sorted(run_ids))}, not {latest.run_id}"
        ], {}
    forecast_id = latest.storage_id
    keys = [dg.AssetCheckKey(forecast_key, name) for name in FORECAST_CHECKS]
    evaluations = _latest_check_evaluations(
        instance, forecast_key, partition, {key.name for key in keys}
    )
    problems, passed = [], {}
    for key in keys:
        evaluation = evaluations.get(key.name)
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            problems.append(f"{key.name}: not evaluated")
        elif not evaluation.passed:
            problems.append(f"{key.name}: failed")
        elif (
            evaluation.target_materialization_data is None
            or evaluation.target_materialization_data.storage_id != forecast_id
        ):
            problems.append(f"{key.name}: passed on an older forecast")
        else:
            passed[key.name] = evaluation
    return problems, passed


def _latest_check_evaluations(
    instance: dg.DagsterInstance, forecast_key: dg.AssetKey, partition: str, names: set[str]
) -> dict[str, dg.AssetCheckEvaluation]:
    """The latest evaluation of each named check of `demand_forecast` on `partition`.

    Read through the instance's public event records of check evaluations (the event log's own
    asset and partition filters do not index them), newest first, a page at a time, until every
    check has its latest evaluation or the records run out.
    """
    latest: dict[str, dg.AssetCheckEvaluation] = {}
    before = None
    while len(latest) < len(names):
        records = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                before_cursor=before,
            ),
            limit=CHECK_RECORDS_PAGE,
            ascending=False,
        )
        for record in records:
            event = record.event_log_entry.dagster_event
            evaluation = event.event_specific_data if event else None
            if (
                isinstance(evaluation, dg.AssetCheckEvaluation)
                and evaluation.asset_key == forecast_key
                and evaluation.partition == partition
                and evaluation.check_name in names
            ):
                latest.setdefault(evaluation.check_name, evaluation)
        if len(records) < CHECK_RECORDS_PAGE:
            break
        before = records[-1].storage_id
    return latest
