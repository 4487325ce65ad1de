"""The feature frame for one forecast origin: every SKU's weekly history over the sliding window.

The window is laid out as a dense SKU × week panel so that gaps, stockouts and prices are handled
with vectorized array operations, then returned in long format (sorted by SKU, then week), which is
what mlforecast trains on. Rules, in the order they apply:

- A SKU's history runs from its first sales row in the window. Active SKUs (a row in the last
  `active_weeks` weeks) run to the origin week; the others stop at their last row.
- A week without a row inside that span is a gap: demand there is *unobserved*, exactly like a
  full stockout.
- Leading zeros (rows without sales before the SKU's first sale in the window) are unobserved too:
  the SKU was most likely not on sale yet. A SKU that never sold in the window keeps its zeros.
- Unobserved demand (gaps, and stockouts below half a week in stock) is filled from the SKU's own
  smoothed demand of the weeks before (what it sold, before its first observed week), so lags and
  rolling means stay meaningful; such weeks get weight 0 in training. Partially stocked weeks
  whose demand was scaled up get their availability as weight.
- Prices and extra dynamic columns are carried forward over gaps (and back before the first value).
- `discount` = 1 - price / regular price, where the regular price is `list_price` or, when the
  drops have none, the SKU's highest price of the last 13 weeks (`reference_price`): promotions
  are temporary price cuts, and the cut relative to the usual price is what moves demand.
- Article and merchant metadata become static categorical features, and so do the article and
  merchant keys themselves when the metadata lists at most `MAX_KEY_CATEGORIES` of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .contract import KEY_COLUMNS, SEASON_WEEKS

__all__ = [
    "BASE_COLUMNS",
    "RETURNING_SKUS",
    "SMOOTHING",
    "StaticTable",
    "build_demand_features",
    "discount",
    "dynamic_columns",
    "regular_price_column",
    "returning_skus",
    "static_columns",
]

# Without a list price, a SKU's highest price of this many recent weeks is its regular price.
REFERENCE_PRICE_WEEKS = 13
REFERENCE_PRICE = "reference_price"
# Weight of the newest observation in the smoothed level used to fill unobserved weeks.
SMOOTHING = 0.3
# A key (article or merchant) is itself a categorical input when its metadata lists at most this
# many keys: a store or brand has an effect of its own that its attributes need not explain
# (TSPerf's recipe takes store and brand as categories), while a category per article of a
# catalogue of hundreds of thousands would only be memorised.
MAX_KEY_CATEGORIES = 1_000
# Columns of the feature frame that are not model inputs (identity, target and bookkeeping).
BASE_COLUMNS = (
    "sku",
    *KEY_COLUMNS,
    "week",
    "units_sold",
    "availability",
    "observed",
    "demand",
    "weight",
    "active",
)
STATIC_PREFIX = "static_"
# Key of the feature frame's `attrs` that counts the SKUs forecast because their season returns.
RETURNING_SKUS = "returning_skus"
_HISTORY_NON_DYNAMIC = {*KEY_COLUMNS, "week", "units_sold", "availability", "censored", "demand"}


def build_demand_features(
    history: pd.DataFrame,
    origin: dt.date,
    history_weeks: int,
    active_weeks: int,
    articles: pd.DataFrame | StaticTable | None = None,
    merchants: pd.DataFrame | StaticTable | None = None,
    censored_as_demand: bool = False,
    keep_empty_columns: bool = False,
    returning_weeks: int = 0,
) -> pd.DataFrame:
    """Builds the training and scoring frame for the window ending at `origin`.

    Args:
        history: `sales_history` rows (keys, `week`, `units_sold`, `availability`, `demand`, prices,
            extra numeric columns) for weeks up to `origin`; later rows are ignored.
        origin: The forecast origin: the Monday of the last observed week.
        history_weeks: Window length in weeks, ending at `origin`.
        active_weeks: SKUs with a row in the last `active_weeks` weeks are forecast.
        articles: Article metadata keyed by `article_id` (optional; a `StaticTable` prepared once
            serves every shard of a window).
        merchants: Merchant metadata keyed by `merchant_id` (optional, likewise).
        censored_as_demand: Take sales in stockout weeks as demand, with full weight, the way a
            model unaware of stock would. Only for comparison: it teaches the model that demand
            was low whenever the shelf was empty.
        keep_empty_columns: Keep dynamic columns that hold no value at all (as NaN). SKU shards
            of one window must share their columns; a single frame drops them.
        returning_weeks: Seasonal SKUs without a recent row whose season comes back within
            `returning_weeks` weeks are forecast too (the rule: `returning_skus`); 0: none.

    Returns:
        Long frame sorted by `sku`, `week`: `BASE_COLUMNS`, the dynamic columns (prices,
        `discount`, extras; float32) and `static_*` categorical columns. Its
        `attrs[RETURNING_SKUS]` counts the active SKUs that are active only by `returning_weeks`.
    """
    origin_ts = pd.Timestamp(origin)
    first_ts = origin_ts - pd.Timedelta(weeks=history_weeks - 1)
    week = history["week"] if len(history) else pd.Series([], dtype="M8[ns]")
    if not pd.api.types.is_datetime64_dtype(week):
        week = pd.to_datetime(week)  # (on datetime64 it would map every row through a cache)
    in_window = (week >= first_ts) & (week <= origin_ts)
    if not in_window.all():
        history, week = history.loc[in_window], week.loc[in_window]
    if history.empty:
        raise ValueError(
            f"No sales history in the window {first_ts.date()} .. {origin}: "
            "materialize sales_history for these weeks first."
        )
    first_ts = week.min()
    n_weeks = (origin_ts - first_ts).days // 7 + 1
    weeks = pd.date_range(first_ts, periods=n_weeks, freq="7D")

    sku_keys, sku = _sku_codes(history)
    t = (week.to_numpy() - first_ts.to_datetime64()) // np.timedelta64(7, "D")
    n_skus = len(sku_keys)

    cell = sku * n_weeks + t  # each row's cell of the flattened SKU x week panel

    def panel(values: pd.Series) -> np.ndarray:
        grid = np.full(n_skus * n_weeks, np.nan, dtype="float32")
        grid[cell] = values.to_numpy(dtype="float32")
        return grid.reshape(n_skus, n_weeks)

    has_row = np.zeros(n_skus * n_weeks, dtype=bool)
    has_row[cell] = True
    has_row = has_row.reshape(n_skus, n_weeks)
    first_t = np.argmax(has_row, axis=1)
    last_t = n_weeks - 1 - np.argmax(has_row[:, ::-1], axis=1)
    units = panel(history["units_sold"])
    active = last_t >= n_weeks - active_weeks
    returning = ~active & returning_skus(units, returning_weeks, active_weeks)
    active |= returning
    end_t = np.where(active, n_weeks - 1, last_t)
    cols = np.arange(n_weeks)
    in_span = (cols >= first_t[:, None]) & (cols <= end_t[:, None])

    availability = panel(history["availability"])
    raw_demand = panel(history["units_sold" if censored_as_demand else "demand"])
    if censored_as_demand:
        availability = np.where(has_row, 1.0, availability).astype("float32")
    observed = has_row & ~np.isnan(raw_demand) & ~_leading_zeros(units, has_row)
    demand = _fill_unobserved(raw_demand, observed, units)
    weight = np.where(observed, np.where(availability >= 1.0, 1.0, availability), 0.0)

    dynamic = {}
    for column in dynamic_columns(history):
        values = _carry_over_gaps(panel(history[column]))
        if keep_empty_columns or not np.isnan(values).all():
            dynamic[column] = values
    if "price" in dynamic:
        if "list_price" not in dynamic:
            dynamic[REFERENCE_PRICE] = _rolling_max(dynamic["price"], REFERENCE_PRICE_WEEKS)
        dynamic["discount"] = discount(dynamic["price"], dynamic[regular_price_column(dynamic)])

    # Long rows in row-major order (sorted by SKU, then week). A boolean mask gathers a panel's
    # cells several times faster than indexing it with row and column arrays.
    rows = np.repeat(np.arange(n_skus, dtype="int32"), in_span.sum(axis=1))
    cells = np.broadcast_to(cols, in_span.shape)[in_span]

    columns = {
        "sku": rows,
        "article_id": pd.Categorical.from_codes(sku_keys.codes[0][rows], sku_keys.levels[0]),
        "merchant_id": pd.Categorical.from_codes(sku_keys.codes[1][rows], sku_keys.levels[1]),
        "week": weeks.to_numpy()[cells],
        "units_sold": units[in_span],
        "availability": availability[in_span],
        "observed": observed[in_span],
        "demand": demand[in_span],
        "weight": weight[in_span].astype("float32"),
        "active": active[rows],
    }
    columns.update((column, values[in_span]) for column, values in dynamic.items())
    statics = (
        StaticTable.prepare(articles, KEY_COLUMNS[0]),
        StaticTable.prepare(merchants, KEY_COLUMNS[1]),
    )
    for level, static in enumerate(statics):
        if static is not None:
            aligned = static.table.reindex(sku_keys.get_level_values(level))
            columns.update(
                (f"{STATIC_PREFIX}{column}", _take(aligned[column], rows))
                for column in aligned.columns
            )
    frame = pd.DataFrame(columns, copy=False)  # no second copy beside the gathered columns
    frame.attrs[RETURNING_SKUS] = int(returning.sum())
    return frame


def returning_skus(units: np.ndarray, returning_weeks: int, away_weeks: int) -> np.ndarray:
    """Seasonal SKUs whose season is about to come back.

    A seasonal article (garden furniture, Christmas decorations) has no row for months and comes
    back with its season; without a forecast a planner would order nothing for it. Two signs
    tell it from a discontinued SKU, which also sold a year ago and has no row since: it sold in
    the `returning_weeks` weeks after the origin's week one year earlier, and it has come back
    before, with a row after at least `away_weeks` weeks without one. A discontinued SKU never
    came back; a seasonal SKU seen for one season only is not recognised yet.

    Args:
        units: SKU x week panel of units sold (NaN: no row), its last column the origin week.
            A window of less than a year has no weeks a year earlier, and no SKU returns.
        returning_weeks: Weeks after the origin's week a year earlier that are looked at.
        away_weeks: Weeks without a row after which a SKU is away (`active_weeks`).
    """
    n_skus, n_weeks = units.shape
    first = n_weeks - SEASON_WEEKS
    if returning_weeks < 1 or first < 0:
        return np.zeros(n_skus, dtype=bool)
    sold_a_year_ago = (np.nan_to_num(units[:, first : first + returning_weeks]) > 0).any(axis=1)
    candidates = np.flatnonzero(sold_a_year_ago)
    has_row = ~np.isnan(units[candidates])
    weeks = np.arange(n_weeks)
    last_row = np.maximum.accumulate(np.where(has_row, weeks, -1), axis=1)  # latest row so far
    before = np.concatenate([np.full((len(candidates), 1), -1), last_row[:, :-1]], axis=1)
    came_back = (has_row & (before >= 0) & (weeks - before > away_weeks)).any(axis=1)
    returning = np.zeros(n_skus, dtype=bool)
    returning[candidates[came_back]] = True
    return returning


def discount(price: np.ndarray, list_price: np.ndarray) -> np.ndarray:
    """Discount depth `1 - price / list_price`, clipped to 0..1; NaN where a price is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(1.0 - np.asarray(price) / np.asarray(list_price), 0.0, 1.0)


def regular_price_column(columns) -> str:
    """The price a discount is measured against: `list_price` when given, else the reference."""
    return "list_price" if "list_price" in columns else REFERENCE_PRICE


def _rolling_max(values: np.ndarray, weeks: int) -> np.ndarray:
    frame = pd.DataFrame(values.T)
    return frame.rolling(weeks, min_periods=1).max().to_numpy(dtype="float32").T


def dynamic_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric per-week inputs: prices, `discount` and any extra numeric columns of the drops."""
    return [
        c
        for c in frame.columns
        if c not in _HISTORY_NON_DYNAMIC
        and c not in BASE_COLUMNS
        and not c.startswith(STATIC_PREFIX)
        and pd.api.types.is_numeric_dtype(frame[c])
    ]


def static_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(STATIC_PREFIX)]


def _sku_codes(history: pd.DataFrame) -> tuple[pd.MultiIndex, np.ndarray]:
    """SKU index (sorted keys) and each row's SKU number."""
    codes, levels = [], []
    for column in KEY_COLUMNS:
        values = history[column]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(str).astype("category")
        categories = values.cat.categories.astype(str)
        order = np.argsort(categories.to_numpy(dtype=object))  # sorted keys, sorted codes
        rank = np.empty(len(order), dtype="int64")
        rank[order] = np.arange(len(order))
        codes.append(rank[values.cat.codes.to_numpy()])
        levels.append(categories[order])
    pair = codes[0] * len(levels[1]) + codes[1]
    first_seen, unique = pd.factorize(pair)  # hashing: linear in rows, unlike a full sort
    order = np.argsort(unique)
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    unique = unique[order]
    keys = pd.MultiIndex(
        levels=levels, codes=[unique // len(levels[1]), unique % len(levels[1])], names=KEY_COLUMNS
    ).remove_unused_levels()
    return keys, rank[first_seen]


def _leading_zeros(units: np.ndarray, has_row: np.ndarray) -> np.ndarray:
    """Rows without sales before a SKU's first sale in the window (never for a SKU that never sold).

    A SKU that sells nothing until some week was most likely not on sale yet: those zeros say
    nothing about demand. A SKU that sold nothing in the whole window keeps its zeros as demand.
    """
    sold = has_row & (np.nan_to_num(units) > 0)
    first_sale = np.where(sold.any(axis=1), np.argmax(sold, axis=1), 0)
    return has_row & (np.arange(units.shape[1]) < first_sale[:, None])


def _fill_unobserved(raw: np.ndarray, observed: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Fills unobserved weeks with the SKU's smoothed level of observed demand so far.

    Weeks before a SKU's first observation take what it sold (0 for leading zeros): only the past
    may fill a week, or the lags of the first observed week would hold its own target. A censored
    week's demand is never below its sales.
    """
    filled = np.where(observed, raw, np.nan).astype("float32")
    level = np.full(raw.shape[0], np.nan, dtype="float32")
    for t in range(raw.shape[1]):
        seen = observed[:, t]
        value = raw[:, t]
        level = np.where(
            seen,
            np.where(np.isnan(level), value, SMOOTHING * value + (1 - SMOOTHING) * level),
            level,
        )
        filled[:, t] = np.where(seen, value, level)
    filled = np.where(np.isnan(filled), np.nan_to_num(units), filled)
    return np.fmax(filled, np.nan_to_num(units)).astype("float32")


def _carry_over_gaps(values: np.ndarray) -> np.ndarray:
    """Forward-fills along weeks, then back-fills the weeks before the first value."""
    present = ~np.isnan(values)
    weeks = np.arange(values.shape[1])
    latest = np.maximum.accumulate(np.where(present, weeks, 0), axis=1)  # last value so far
    filled = np.take_along_axis(values, latest, axis=1)
    first = np.argmax(present, axis=1)
    before_first = weeks < first[:, None]
    firsts = values[np.arange(len(values)), first][:, None]
    return np.where(before_first, firsts, filled).astype("float32", copy=False)


@dataclass(frozen=True)
class StaticTable:
    """Article or merchant metadata, prepared once for every shard of a window.

    Attributes:
        key: `article_id` or `merchant_id`.
        table: One row per key, indexed by the key as text; text columns are categoricals whose
            categories are the whole table's values (sorted), so every shard of SKUs codes a value
            the same way, as the model must see it; numbers stay numbers.
    """

    key: str
    table: pd.DataFrame

    @classmethod
    def prepare(cls, metadata: pd.DataFrame | StaticTable | None, key: str) -> StaticTable | None:
        """The prepared table (None: no metadata, or no rows in it)."""
        if metadata is None or isinstance(metadata, StaticTable):
            return metadata
        if metadata.empty:
            return None
        # Keys are unique (validate_metadata).
        table = metadata.set_index(pd.Index(metadata[key].astype(str), name=key))
        table = table.drop(columns=key)
        if len(table) <= MAX_KEY_CATEGORIES:
            table[key] = table.index.to_numpy(dtype=object)
        for column in table.columns:
            values = table[column]
            if not pd.api.types.is_numeric_dtype(values):
                categories = np.sort(values.dropna().astype(str).unique())
                table[column] = pd.Categorical(values.astype("string"), categories=categories)
        table.index.get_indexer(table.index[:1])  # the key lookup, built here, not per shard
        return cls(key, table)

    def known(self, keys: pd.Index) -> np.ndarray:
        """Whether each key has a row."""
        return self.table.index.get_indexer(keys) >= 0


def _take(values: pd.Series, rows: np.ndarray) -> pd.Series | pd.Categorical:
    """`values` at positions `rows`, without an index (a categorical stays one)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(values.cat.codes.to_numpy()[rows], dtype=values.dtype)
    return values.iloc[rows].reset_index(drop=True)
