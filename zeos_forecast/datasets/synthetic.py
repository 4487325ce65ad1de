"""Vectorized generator of realistic synthetic weekly e-commerce demand panels (SKU x week)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "PanelStream",
    "SyntheticPanel",
    "generate_panel",
    "latest_complete_week",
    "stream_panel",
]

CATEGORIES = (
    "shoes", "dresses", "tops", "trousers", "jackets", "knitwear",
    "swimwear", "sportswear", "accessories", "bags", "beauty", "kids",
)  # fmt: skip
CATEGORY_MIX_CONCENTRATION = 5.0  # Dirichlet: categories differ moderately in size
BRANDS_PER_CATEGORY = 15
BRAND_ZIPF_EXPONENT = 1.1  # a few big brands per category, many small ones
COLOURS = ("black", "white", "blue", "grey", "beige", "red", "green", "brown", "pink", "multi")
COLOUR_WEIGHTS = (0.25, 0.15, 0.14, 0.1, 0.08, 0.07, 0.06, 0.06, 0.05, 0.04)
N_MERCHANTS = 50
STORE_FORMATS = ("marketplace", "brand_store", "department_store", "outlet")
MERCHANTS_PER_ARTICLE_P = (0.45, 0.35, 0.20)  # P(article is sold by 1, 2, 3 merchants)
MERCHANT_SIZE_LOG_SD = 0.8  # merchant popularity: who lists articles and how much they sell
OUTLET_PROMO_FACTOR = 2.0  # outlets run promotions twice as often
WEEKS_PER_YEAR = 52.1775
LEVEL_LOG_MEAN, ARTICLE_LOG_SD, SKU_LOG_SD = -0.6, 1.3, 0.5  # log mean weekly demand
BRAND_LOG_SD = 0.4
MAX_LOG_DEMAND = 11.0  # caps the mean at ~60k units per week
SEASON_AMPLITUDE = (0.1, 0.6)  # category log-amplitude of the yearly cycle
HOLIDAY_WEEK, HOLIDAY_WIDTH, HOLIDAY_LIFT = 49, 2.0, 0.5  # Christmas shopping peak (log lift)
CAMPAIGN_WEEK, CAMPAIGN_PROMO_RATE = 47, 0.4  # Black Friday: extra promo probability
TREND_LOG_SD = 0.3  # per-SKU log-demand slope per year
DRIFT_STEP_LOG_SD = 0.03  # weekly random-walk step of log demand
DISPERSION_RANGE = (0.15, 5.0)  # gamma shape (log-uniform); small => lumpy bursts
LAUNCH_SHARE, DISCONTINUE_SHARE = 0.2, 0.1
RAMP_UP_WEEKS = 3.0  # launched SKUs reach full demand after a few weeks
NOT_LAUNCHED = -(10**4)  # launch week of SKUs already listed before the history starts
NO_PROMO_SHARE, PROMO_RATE_RANGE = 0.3, (0.02, 0.12)
DISCOUNT_STEP, DISCOUNT_STEPS = 0.05, (2, 10)  # discounts 10 % .. 50 % in 5 % steps
ELASTICITY_RANGE = (1.5, 3.0)
PRICE_LOG_MEAN, PRICE_LOG_SD, CATEGORY_PRICE_LOG_SD = 3.5, 0.5, 0.4  # median ~33 EUR
MERCHANT_PRICE_SPREAD = 0.05
MIN_LIST_PRICE, PRICE_ENDING = 1.0, 0.99  # list prices are x.99 and at least 1.99
LIST_RAISE_SHARE, LIST_RAISE_MAX = 0.3, 0.12  # share of SKUs with one list-price increase
STOCKOUT_START_RANGE = (0.0, 0.05)  # weekly probability an out-of-stock episode starts
PROMO_STOCKOUT_FACTOR = 3.0  # promotions drain stock
MEAN_STOCKOUT_WEEKS = 2.0
FULL_STOCKOUT_SHARE, PARTIAL_AVAILABILITY = 0.4, (0.05, 0.95)
CHUNK_SKUS = 1 << 14  # bounds the temporaries of one simulation step
# SKUs per chunk of a streamed panel: 16 blocks, ~1 GiB of arrays at 168 weeks.
STREAM_CHUNK_SKUS = 16 * CHUNK_SKUS
PANEL_DTYPES = {"units_sold": np.float32, "true_demand": np.float32, "price": np.float32,
                "list_price": np.float32, "availability": np.float32, "promo": np.int8,
                "live": np.bool_}  # fmt: skip


@dataclass(frozen=True, eq=False)
class SyntheticPanel:
    """A synthetic SKU x week panel; all 2-D arrays have shape (n_skus, n_weeks).

    Attributes:
        weeks: The week Mondays, ascending.
        article_id, merchant_id: SKU key per row; (article_id, merchant_id) pairs are unique.
        units_sold: Observed sales, true demand thinned by availability (whole numbers).
        true_demand: Uncensored demand, for evaluating stockout handling.
        price, list_price: Effective selling price and list price (price <= list_price).
        availability: Share of the week in stock, 0..1.
        promo: 1 in promotion weeks (price below list price), else 0.
        live: SKU listed that week (launched and not yet discontinued). Outside its live span a
            SKU has zero demand, sales, availability and promo and price == list_price.
        articles: article_id, category, brand, colour.
        merchants: merchant_id, store_format.
    """

    weeks: pd.DatetimeIndex
    article_id: np.ndarray
    merchant_id: np.ndarray
    units_sold: np.ndarray
    true_demand: np.ndarray
    price: np.ndarray
    list_price: np.ndarray
    availability: np.ndarray
    promo: np.ndarray
    live: np.ndarray
    articles: pd.DataFrame
    merchants: pd.DataFrame

    def week_frame(self, t: int) -> pd.DataFrame:
        """Rows of week index `t` for live SKUs, in the landing contract.

        Args:
            t: Week index into `weeks` (negative indices count from the end).

        Returns:
            Columns article_id, merchant_id, week (datetime64[ns] Monday), units_sold, price,
            list_price, availability, promo.
        """
        rows = self.live[:, t]
        frame = pd.DataFrame(
            {"article_id": self.article_id[rows], "merchant_id": self.merchant_id[rows]}
        )
        frame["week"] = self.weeks[t].as_unit("ns")
        for col in ("units_sold", "price", "list_price", "availability", "promo"):
            frame[col] = getattr(self, col)[rows, t]
        return frame


@dataclass(frozen=True, eq=False)
class PanelStream:
    """A synthetic panel that is simulated one chunk of SKUs at a time (see `stream_panel`).

    Iterating yields `SyntheticPanel`s of consecutive SKU rows, all weeks each, whose arrays are
    exactly the rows of `generate_panel` with the same arguments. `articles` and `merchants`
    (the metadata of every SKU) are in every chunk.

    Attributes:
        weeks: The week Mondays, ascending.
        articles, merchants: Metadata tables of the whole panel.
        chunk_skus: SKUs per yielded chunk (the last one may be smaller); a multiple of
            `CHUNK_SKUS`.
        article_id, merchant_id: SKU key of every row of the panel.
        params: Per-SKU simulation parameters, one array per parameter.
        season, campaign: Per-category seasonality (categories x weeks) and campaign promotion
            rate per week.
        block_seeds: One seed per `CHUNK_SKUS` block of rows.
    """

    weeks: pd.DatetimeIndex
    articles: pd.DataFrame
    merchants: pd.DataFrame
    chunk_skus: int
    article_id: np.ndarray
    merchant_id: np.ndarray
    params: dict[str, np.ndarray]
    season: np.ndarray
    campaign: np.ndarray
    block_seeds: list[np.random.SeedSequence]

    @property
    def n_skus(self) -> int:
        return len(self.article_id)

    def __len__(self) -> int:
        """The number of chunks."""
        return -(-self.n_skus // self.chunk_skus)

    def __iter__(self) -> Iterator[SyntheticPanel]:
        for lo in range(0, self.n_skus, self.chunk_skus):
            yield self.rows(lo, min(lo + self.chunk_skus, self.n_skus))

    def rows(self, lo: int, hi: int) -> SyntheticPanel:
        """SKU rows `lo..hi-1` of the panel; `lo` must start a simulation block."""
        if lo % CHUNK_SKUS:
            raise ValueError(f"rows must start at a multiple of {CHUNK_SKUS}, got {lo}")
        out = {k: np.empty((hi - lo, len(self.weeks)), dtype=d) for k, d in PANEL_DTYPES.items()}
        for block_lo in range(lo, hi, CHUNK_SKUS):
            block = slice(block_lo, min(block_lo + CHUNK_SKUS, hi))
            rng = np.random.default_rng(self.block_seeds[block_lo // CHUNK_SKUS])
            params = {k: v[block] for k, v in self.params.items()}
            simulated = _simulate(params, self.season, self.campaign, rng)
            for k, v in simulated.items():
                out[k][block.start - lo : block.stop - lo] = v
        return SyntheticPanel(
            weeks=self.weeks,
            article_id=self.article_id[lo:hi],
            merchant_id=self.merchant_id[lo:hi],
            articles=self.articles,
            merchants=self.merchants,
            **out,
        )


def latest_complete_week(today: datetime.date | None = None) -> datetime.date:
    """The Monday of the last week that has ended (UTC): where generated data ends by default."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    return today - datetime.timedelta(days=today.weekday() + 7)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def _catalogue(n_skus: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Articles (category -> brand, colour), each sold by 1-3 distinct merchants (SKUs)."""
    n_cat = len(CATEGORIES)
    size = rng.lognormal(0.0, MERCHANT_SIZE_LOG_SD, N_MERCHANTS)
    per_article = rng.choice(len(MERCHANTS_PER_ARTICLE_P), n_skus, p=MERCHANTS_PER_ARTICLE_P) + 1
    n_articles = int(np.searchsorted(np.cumsum(per_article), n_skus)) + 1
    per_article = per_article[:n_articles]
    per_article[-1] -= per_article.sum() - n_skus
    article = np.repeat(np.arange(n_articles), per_article)
    rank = np.arange(n_skus) - np.repeat(np.cumsum(per_article) - per_article, per_article)
    # Offsets 0 < d1 < d1 + d2 < N_MERCHANTS keep an article's merchants distinct.
    steps = rng.integers(1, N_MERCHANTS // 2, size=(n_articles, 2))
    offsets = np.column_stack([np.zeros(n_articles, np.int64), steps[:, 0], steps.sum(axis=1)])
    first = rng.choice(N_MERCHANTS, size=n_articles, p=size / size.sum())
    brand_p = 1 / np.arange(1, BRANDS_PER_CATEGORY + 1) ** BRAND_ZIPF_EXPONENT
    category = rng.choice(
        n_cat, n_articles, p=rng.dirichlet(np.full(n_cat, CATEGORY_MIX_CONCENTRATION))
    )
    return {
        "article": article,
        "merchant": (first[article] + offsets[article, rank]) % N_MERCHANTS,
        "merchant_size": size,
        "category": category,
        "brand": category * BRANDS_PER_CATEGORY
        + rng.choice(BRANDS_PER_CATEGORY, n_articles, p=brand_p / brand_p.sum()),
        "colour": rng.choice(len(COLOURS), n_articles, p=COLOUR_WEIGHTS),
        "store_format": rng.choice(len(STORE_FORMATS), N_MERCHANTS),
    }


def _sku_params(
    c: dict[str, np.ndarray], n_weeks: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per-SKU parameters: level, trend, lumpiness, live span, promotions, prices, stock."""
    n_skus, n_articles, n_cat = len(c["article"]), len(c["category"]), len(CATEGORIES)
    article, merchant, cat = c["article"], c["merchant"], c["category"][c["article"]]
    level = (
        LEVEL_LOG_MEAN
        + rng.normal(0, ARTICLE_LOG_SD, n_articles)[article]
        + rng.normal(0, SKU_LOG_SD, n_skus)
        + np.log(c["merchant_size"])[merchant]
        + rng.normal(0, BRAND_LOG_SD, n_cat * BRANDS_PER_CATEGORY)[c["brand"]][article]
    )
    launched = (rng.random(n_skus) < LAUNCH_SHARE) & (n_weeks > 1)
    launch = np.where(launched, rng.integers(1, max(n_weeks, 2), n_skus), NOT_LAUNCHED)
    first = np.maximum(launch, 0)
    stopped = (rng.random(n_skus) < DISCONTINUE_SHARE) & (first < n_weeks - 1)
    end = np.where(stopped, rng.integers(np.minimum(first + 1, n_weeks - 1), n_weeks), n_weeks)
    outlet = c["store_format"][merchant] == STORE_FORMATS.index("outlet")
    promo_rate = rng.uniform(*PROMO_RATE_RANGE, n_skus) * (rng.random(n_skus) >= NO_PROMO_SHARE)
    base_price = np.exp(
        rng.normal(PRICE_LOG_MEAN, CATEGORY_PRICE_LOG_SD, n_cat)[c["category"]]
        + rng.normal(0, PRICE_LOG_SD, n_articles)
    )
    merchant_price = rng.uniform(1 - MERCHANT_PRICE_SPREAD, 1 + MERCHANT_PRICE_SPREAD, n_skus)
    raised = rng.random(n_skus) < LIST_RAISE_SHARE
    p = {
        "category": cat,
        "level": level,
        "launch": launch,
        "end": end,
        "trend": rng.normal(0, TREND_LOG_SD, n_skus),
        "dispersion": np.exp(rng.uniform(*np.log(DISPERSION_RANGE), n_skus)),
        "elasticity": rng.uniform(*ELASTICITY_RANGE, n_cat)[cat],
        "promo_rate": promo_rate * np.where(outlet, OUTLET_PROMO_FACTOR, 1.0),
        "stockout_rate": rng.uniform(*STOCKOUT_START_RANGE, n_skus),
        "list_price": base_price[article] * merchant_price + MIN_LIST_PRICE,
        "raise_week": np.where(raised, rng.integers(0, n_weeks, n_skus), n_weeks),
        "raise": 1 + rng.uniform(0, LIST_RAISE_MAX, n_skus),
    }
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in p.items()}


def _simulate(
    p: dict[str, np.ndarray], season: np.ndarray, campaign: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Simulate one chunk of SKUs (rows of the per-SKU parameters `p`) over all weeks."""
    n, n_weeks = len(p["level"]), season.shape[1]
    t = np.arange(n_weeks, dtype=np.int32)
    col = {k: v[:, None] for k, v in p.items()}
    live = (t >= col["launch"]) & (t < col["end"])
    raised = np.where(t >= col["raise_week"], col["raise"], np.float32(1.0))
    list_price = np.floor(col["list_price"] * raised) + np.float32(PRICE_ENDING)
    promo_rate = col["promo_rate"] + campaign * (col["promo_rate"] > 0)
    promo = live & (rng.random((n, n_weeks), dtype=np.float32) < promo_rate)
    price = list_price.copy()
    steps = rng.integers(*DISCOUNT_STEPS, size=int(promo.sum()), endpoint=True)
    price[promo] = np.round(list_price[promo] * (1 - DISCOUNT_STEP * steps), 2)
    drift = np.cumsum(rng.standard_normal((n, n_weeks), dtype=np.float32), axis=1)
    log_mu = col["level"] + season[p["category"]] + col["trend"] * (t / WEEKS_PER_YEAR)
    log_mu += DRIFT_STEP_LOG_SD * drift - col["elasticity"] * np.log(price / list_price)
    ramp = -np.expm1(-np.maximum(t + 1 - col["launch"], 0) / RAMP_UP_WEEKS)
    mu = np.exp(np.minimum(log_mu, MAX_LOG_DEMAND)) * ramp * live
    # Poisson-gamma (negative binomial) counts; a small gamma shape gives lumpy, intermittent SKUs.
    shape = col["dispersion"]
    demand = rng.poisson(mu * rng.standard_gamma(shape, (n, n_weeks), dtype=np.float32) / shape)
    # Out-of-stock episodes: start weeks with geometric durations, overlapping episodes merge.
    start_p = col["stockout_rate"] * (1 + (PROMO_STOCKOUT_FACTOR - 1) * promo)
    starts = live & (rng.random((n, n_weeks), dtype=np.float32) < start_p)
    episode_end = np.zeros((n, n_weeks), dtype=np.int32)
    length = rng.geometric(1 / MEAN_STOCKOUT_WEEKS, int(starts.sum()))
    episode_end[starts] = np.broadcast_to(t, starts.shape)[starts] + length
    out_of_stock = live & (t < np.maximum.accumulate(episode_end, axis=1))
    availability = live.astype(np.float32)
    share = rng.uniform(*PARTIAL_AVAILABILITY, int(out_of_stock.sum())).astype(np.float32)
    share[rng.random(len(share)) < FULL_STOCKOUT_SHARE] = 0.0
    availability[out_of_stock] = share
    units = demand.copy()
    units[out_of_stock] = rng.binomial(demand[out_of_stock], share)  # censoring by availability
    arrays = (units, demand, price, list_price, availability, promo, live)
    return dict(zip(PANEL_DTYPES, arrays, strict=True))


def generate_panel(
    n_skus: int, n_weeks: int, last_week: datetime.date, seed: int = 0
) -> SyntheticPanel:
    """Generate a deterministic synthetic demand panel.

    Args:
        n_skus: Number of (article_id, merchant_id) SKUs (>= 1).
        n_weeks: Number of weekly periods (>= 1).
        last_week: Monday of the last week in the panel.
        seed: Random seed; the same arguments always give the same panel.

    Returns:
        The panel; `weeks` are the `n_weeks` Mondays ending at `last_week`.

    Raises:
        ValueError: If `last_week` is not a Monday or a size is not positive.
    """
    return stream_panel(n_skus, n_weeks, last_week, seed).rows(0, n_skus)


def stream_panel(
    n_skus: int,
    n_weeks: int,
    last_week: datetime.date,
    seed: int = 0,
    chunk_skus: int = STREAM_CHUNK_SKUS,
) -> PanelStream:
    """The panel of `generate_panel` with the same arguments, to be generated chunk by chunk.

    Only the catalogue and the per-SKU parameters are drawn here (small: tens of bytes per
    SKU); iterating the result simulates and yields one chunk of SKUs at a time, each with all
    weeks, so memory is bounded by `chunk_skus`, not by `n_skus`.

    Args:
        n_skus, n_weeks, last_week, seed: As for `generate_panel`.
        chunk_skus: SKUs per chunk, rounded up to a multiple of the simulation block
            (`CHUNK_SKUS`), since each block is simulated with its own random stream.

    Raises:
        ValueError: If `last_week` is not a Monday or a size is not positive.
    """
    if last_week.weekday() != 0:
        raise ValueError(f"last_week must be a Monday, got {last_week:%A} {last_week}")
    if n_skus < 1 or n_weeks < 1 or chunk_skus < 1:
        raise ValueError(
            f"n_skus, n_weeks and chunk_skus must be positive, got {n_skus}, {n_weeks}, "
            f"{chunk_skus}"
        )
    weeks = pd.date_range(end=pd.Timestamp(last_week).normalize(), periods=n_weeks, freq="7D")
    seeds = np.random.SeedSequence(seed).spawn(1 + -(-n_skus // CHUNK_SKUS))
    rng = np.random.default_rng(seeds[0])
    c = _catalogue(n_skus, rng)
    p = _sku_params(c, n_weeks, rng)
    brands = [f"{k}_brand_{b:02d}" for k in CATEGORIES for b in range(BRANDS_PER_CATEGORY)]
    articles = pd.DataFrame(
        {
            "article_id": _ids("A", len(c["category"]), 7),
            "category": np.array(CATEGORIES, object)[c["category"]],
            "brand": np.array(brands, object)[c["brand"]],
            "colour": np.array(COLOURS, object)[c["colour"]],
        }
    )
    merchants = pd.DataFrame(
        {
            "merchant_id": _ids("M", N_MERCHANTS, 3),
            "store_format": np.array(STORE_FORMATS, object)[c["store_format"]],
        }
    )
    # Yearly seasonality per category from the ISO week of each real date, plus a holiday peak.
    woy = weeks.isocalendar().week.to_numpy(np.float32)
    amplitude = rng.uniform(*SEASON_AMPLITUDE, (len(CATEGORIES), 1))
    peak = rng.uniform(0, WEEKS_PER_YEAR, (len(CATEGORIES), 1))
    holiday = HOLIDAY_LIFT * np.exp(-0.5 * ((woy - HOLIDAY_WEEK) / HOLIDAY_WIDTH) ** 2)
    cycle = np.cos(2 * np.pi * (woy - peak) / WEEKS_PER_YEAR)
    season = (amplitude * cycle + holiday).astype(np.float32)
    campaign = np.where(woy == CAMPAIGN_WEEK, CAMPAIGN_PROMO_RATE, 0.0).astype(np.float32)
    return PanelStream(
        weeks=weeks,
        articles=articles,
        merchants=merchants,
        chunk_skus=-(-chunk_skus // CHUNK_SKUS) * CHUNK_SKUS,
        article_id=articles["article_id"].to_numpy()[c["article"]],
        merchant_id=merchants["merchant_id"].to_numpy()[c["merchant"]],
        params=p,
        season=season,
        campaign=campaign,
        block_seeds=seeds[1:],
    )
