"""zeos_forecast: weekly probabilistic demand forecasts; `DemandForecastComponent` is its Dagster
Component (imported on first use, so the CLI and the core load without Dagster)."""

__all__ = ["DemandForecastComponent"]


def __getattr__(name: str):
    if name == "DemandForecastComponent":
        from .component import DemandForecastComponent

        return DemandForecastComponent
    raise AttributeError(f"module 'zeos_forecast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
