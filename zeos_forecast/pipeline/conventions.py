"""What a Dagster user expects on every asset: the columns of its table (`dagster/column_schema`),
and on every materialization its row count (`dagster/row_count`) and location (`dagster/uri`)."""

from __future__ import annotations

import dagster as dg

from ..core.contract import KEY_COLUMNS

__all__ = ["TABLE_SCHEMAS", "forecast_schema", "with_row_count_and_uri"]

_KEYS = [
    dg.TableColumn(name, "string", description="SKU key (with the other key)")
    for name in KEY_COLUMNS
]


def forecast_schema(quantile_columns: list[str]) -> dg.TableSchema:
    """The forecast table: one row per SKU, target week and horizon."""
    return dg.TableSchema(
        columns=[
            *_KEYS,
            dg.TableColumn("week", "date", description="the target week (W+horizon)"),
            dg.TableColumn("horizon", "int16", description="weeks ahead, 1..H"),
            dg.TableColumn("forecast", "float", description="the point forecast"),
            *[
                dg.TableColumn(column, "float", description=f"the {column[1:]} % quantile")
                for column in quantile_columns
            ],
            dg.TableColumn("run_id", "string", description="the Dagster run that made it"),
        ]
    )


TABLE_SCHEMAS = {
    "sales_history": dg.TableSchema(
        columns=[
            *_KEYS,
            dg.TableColumn("units_sold", "double", description="units sold in the week"),
            dg.TableColumn("price", "double", description="effective selling price (optional)"),
            dg.TableColumn("list_price", "double", description="initial price (optional)"),
            dg.TableColumn("availability", "double", description="share of the week in stock"),
            dg.TableColumn("censored", "bool", description="availability < 1: demand unobserved"),
            dg.TableColumn(
                "demand", "double", description="units sold, or the estimate if censored"
            ),
            dg.TableColumn("...", "double", description="the drop's other numeric columns"),
        ]
    ),
    "demand_features": dg.TableSchema(
        columns=[
            dg.TableColumn(
                "sku",
                "int64",
                description="SKU number, unique in the window, increasing in key order",
            ),
            *_KEYS,
            dg.TableColumn("week", "timestamp", description="week of the window"),
            dg.TableColumn("units_sold", "float"),
            dg.TableColumn("availability", "float"),
            dg.TableColumn("observed", "bool", description="a fully stocked sales row"),
            dg.TableColumn("demand", "float", description="target, gaps and stockouts filled"),
            dg.TableColumn("weight", "float", description="training weight (0: filled)"),
            dg.TableColumn("active", "bool", description="forecast for this SKU"),
            dg.TableColumn("price", "float"),
            dg.TableColumn("list_price", "float"),
            dg.TableColumn("discount", "float", description="1 - price / list_price"),
            dg.TableColumn("static_...", "string", description="article and merchant metadata"),
        ]
    ),
}


def with_row_count_and_uri(result: dg.MaterializeResult) -> dg.MaterializeResult:
    """The asset's own metadata plus `dagster/row_count` (its `rows`) and `dagster/uri` (its
    `path`), the keys the UI and catalogs read."""
    metadata = dict(result.metadata or {})
    if isinstance(metadata.get("rows"), int):
        metadata["dagster/row_count"] = metadata["rows"]
    path = metadata.get("path")
    if isinstance(path, dg.PathMetadataValue):
        metadata["dagster/uri"] = dg.MetadataValue.text(str(path.value))
    return result._replace(metadata=metadata)
