"""zeos_forecast: weekly probabilistic demand forecasts; `DemandForecastComponent` is its Dagster
Component (imported on first use, so the CLI and the core load without Dagster)."""

import os

__all__ = ["DemandForecastComponent"]

# LightGBM's OpenMP threads meet at every step of every tree. By default OpenMP makes a waiting
# thread spin on its core, and when another process (the Dagster daemon, the webserver, another
# run) holds one of the cores, the spinning threads and the thread that shares the busy core take
# turns at the scheduler's pace: training fell to a twentieth of its quiet speed (issue 20).
# Passive waiting lets a waiting thread sleep, so the busy core's thread gets it back at once.
# It must be set before the OpenMP runtime loads (with LightGBM, which this package imports only
# inside the steps that train); a value the user set wins. `zeos-forecast bench contention`
# measures it (docs/deployment.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    if name == "DemandForecastComponent":
        from .component import DemandForecastComponent

        return DemandForecastComponent
    raise AttributeError(f"module 'zeos_forecast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
