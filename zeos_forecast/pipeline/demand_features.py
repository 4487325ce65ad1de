"""`demand_features`: the feature frame of the sliding history window ending at each origin week.

An adapter: run config in, `core.services.build_features`, metadata out."""

import dagster as dg

from ..core.contract import LandingDataError
from ..core.features import dynamic_columns, static_columns
from ..core.history import HistoryTooShortError
from ..core.services import FeatureWindow, build_features
from ..storage import DEMAND_FEATURES, ORIGIN_KEY
from .config import WindowConfig, window_config
from .conventions import TABLE_SCHEMAS, with_row_count_and_uri
from .instance import ForecastInstance
from .metadata import peak_memory_mb, preview
from .partitions import partition_week
from .resources import ComputeResource, LakeResource
from .retries import STEP_RETRY_POLICY, landing_failure
from .sales_history import SALES_HISTORY

__all__ = [
    "DEMAND_FEATURES",
    "ORIGIN_KEY",
    "demand_features",
    "demand_features_asset",
    "history_window",
]


def history_window(history_weeks: int) -> dg.TimeWindowPartitionMapping:
    """Lineage: partition W depends on the `history_weeks` sales_history weeks ending at W."""
    return dg.TimeWindowPartitionMapping(start_offset=-(history_weeks - 1), end_offset=0)


def demand_features_asset(instance: ForecastInstance) -> dg.AssetsDefinition:
    """`demand_features` of an instance: its window is the lineage and the run config's default."""
    settings = instance.settings.forecast
    config_type = window_config(settings)

    @dg.asset(
        key=instance.key(DEMAND_FEATURES),
        deps=[
            dg.AssetDep(
                instance.key(SALES_HISTORY),
                partition_mapping=history_window(settings.history_weeks),
            )
        ],
        required_resource_keys={instance.name("lake"), instance.name("compute")},
        retry_policy=STEP_RETRY_POLICY,
        kinds={"parquet", "pandas"},
        **instance.asset_attributes("demand", demand_features, TABLE_SCHEMAS[DEMAND_FEATURES]),
    )
    def _asset(context: dg.AssetExecutionContext, config: config_type) -> dg.MaterializeResult:
        lake, compute = instance.resource(context, "lake"), instance.resource(context, "compute")
        return with_row_count_and_uri(demand_features(context, config, lake, compute))

    return _asset


def demand_features(
    context: dg.AssetExecutionContext,
    config: WindowConfig,
    lake: LakeResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """Training and scoring frame for origin week W: every SKU's weekly history in the window.

    Reads the window's `sales_history` straight from the parquet dataset (a week filter, not a
    fan-in of partitions), fills gaps and stockouts from each SKU's own recent demand with zero
    training weight, carries prices forward, adds discount depth and article/merchant metadata as
    static features. A window larger than the memory budget is built in shards of articles (a
    key-range read each), each its own part (written by the Dask worker that built it). Writes
    `demand_features/forecast_week=W/`: the parts, sorted by SKU, every row group holding whole
    SKUs, published at once by `_manifest.json`. A window with fewer than `min_history_weeks`
    weeks of sales rows is refused: the run fails saying so, and nothing downstream (forecast,
    publication) runs.
    """
    store = lake.open()
    window = FeatureWindow(
        history_weeks=config.history_weeks,
        min_history_weeks=config.min_history_weeks,
        active_weeks=config.active_weeks,
        returning_weeks=config.returning_weeks,
        censored_as_demand=config.censored_as_demand,
    )
    try:
        built = build_features(
            store,
            partition_week(context.partition_key),
            window,
            compute.settings(),
            context.log.info,
        )
    except HistoryTooShortError as error:
        raise dg.Failure(
            str(error), metadata={"weeks_with_sales": error.weeks_with_sales}, allow_retries=False
        ) from error
    except LandingDataError as error:
        raise landing_failure(error) from error
    except ValueError as error:  # no validated origin, or a frame that cannot be written
        raise dg.Failure(str(error), allow_retries=False) from error
    summary, rows = built.summary, built.rows
    unknown = {
        "skus_without_article_metadata": summary.without_article,
        "skus_without_merchant_metadata": summary.without_merchant,
    }
    for name, count in unknown.items():
        if count:
            context.log.warning(f"{name}: {count:,} (their static features are empty)")
    head = summary.head
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "skus": summary.skus,
            "active_skus": summary.active_skus,
            "returning_skus": summary.returning_skus,
            "weeks_of_history": summary.weeks,
            "weeks_with_sales": built.weeks_with_sales,
            "min_history_weeks": config.min_history_weeks,
            "first_week": str(built.first_week),
            "unobserved_share": round(summary.unobserved / max(rows, 1), 4),
            "dynamic_features": ", ".join(dynamic_columns(head)),
            "static_features": ", ".join(static_columns(head)) or "none",
            **unknown,
            "engine": built.engine,
            "shards": built.shards,
            "seconds": round(built.seconds, 2),
            "peak_memory_mb": peak_memory_mb(),
            "path": dg.MetadataValue.path(store.uri_of_path(built.path)),
            "preview": preview(head.drop(columns="sku")),
        }
    )
