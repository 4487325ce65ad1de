"""Run configuration shown in the launchpad, derived from `ForecastSettings`: no setting is declared
twice. Its fields, types, descriptions and defaults are `ForecastSettings`' own (an instance's
settings give the defaults of its launchpad)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar, TypeVar, get_type_hints

import dagster as dg
from pydantic import BaseModel, Field, create_model

from ..core.settings import (
    SETTING_CHOICES,
    WINDOW_SETTINGS,
    ForecastSettings,
    model_settings,
    setting_descriptions,
)

__all__ = [
    "FORECAST_SETTINGS",
    "WINDOW_SETTINGS",
    "ForecastConfig",
    "WindowConfig",
    "forecast_config",
    "settings_fields",
    "window_config",
]

M = TypeVar("M", bound=BaseModel)
FORECAST_SETTINGS = model_settings()


def settings_fields(names: tuple[str, ...], defaults: ForecastSettings) -> dict[str, Any]:
    """`create_model` fields of the named settings: type (tuples as lists), default, description."""
    hints = get_type_hints(ForecastSettings)
    descriptions = setting_descriptions()
    made: dict[str, Any] = {}
    for name in names:
        kind = hints[name]
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            kind, default = list[kind.__args__[0]], list(default)  # tuple[int, ...] -> list[int]
        description = descriptions[name]
        if name in SETTING_CHOICES:
            description += f" One of: {', '.join(SETTING_CHOICES[name])}."
        made[name] = (kind, Field(default, description=description))
    return made


class _WindowConfig(dg.Config):
    """Which history the features of one origin week cover."""

    defaults: ClassVar[ForecastSettings] = ForecastSettings()
    censored_as_demand: bool = Field(
        False,
        description="Take sales in stockout weeks as demand (for comparison backtests only; "
        "by default stockout weeks are unobserved demand and carry no training weight).",
    )


class _ForecastConfig(dg.Config):
    """How the model is trained and scored (see `ForecastSettings` for each field)."""

    defaults: ClassVar[ForecastSettings] = ForecastSettings()

    def settings(self) -> ForecastSettings:
        """The instance's settings with this run's values."""
        values = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in self.model_dump().items()
        }
        return replace(self.defaults, **values)


def window_config(defaults: ForecastSettings) -> type[_WindowConfig]:
    """`demand_features`' run config, with these settings as its defaults."""
    return _derived("WindowConfig", _WindowConfig, WINDOW_SETTINGS, defaults)


def forecast_config(defaults: ForecastSettings) -> type[_ForecastConfig]:
    """`demand_forecast`'s run config, with these settings as its defaults."""
    return _derived("ForecastConfig", _ForecastConfig, FORECAST_SETTINGS, defaults)


def _derived(
    name: str, base: type[M], names: tuple[str, ...], defaults: ForecastSettings
) -> type[M]:
    model = create_model(name, __base__=base, **settings_fields(names, defaults))
    model.defaults = defaults
    return model


# The configs with the documented defaults (an instance builds its own from its settings).
WindowConfig = window_config(ForecastSettings())
ForecastConfig = forecast_config(ForecastSettings())
