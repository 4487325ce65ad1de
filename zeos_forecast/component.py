"""`DemandForecastComponent`: weekly demand forecasting as a Dagster Component, configured in YAML.

A platform team adds it to the Dagster project it already runs with
`dg scaffold defs zeos_forecast.DemandForecastComponent forecasting` and sets its attributes in
the `defs.yaml` written (see docs/component.md). Each instance builds the whole graph (assets,
checks, job, sensor, schedule, resources) for one lake; with a `key_prefix` several instances
(one per region or lake) sit side by side. The project's own code location is one instance,
configured from the environment (`DemandForecastComponent.from_environment`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import textwrap
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
import yaml
from dagster_aws.s3 import S3Resource
from pydantic import Field, create_model

from .core.settings import ForecastSettings
from .pipeline.assembly import forecast_definitions
from .pipeline.config import settings_fields
from .pipeline.environment import (
    LAKE_VAR,
    S3_VARS,
    deployment,
    lake_root,
    schedule_time,
    sensor_interval_seconds,
)
from .pipeline.environment import first_week as first_week_variable
from .pipeline.instance import DEFAULT_FIRST_WEEK, InstanceSettings
from .pipeline.landing_zone import LandingZone, LocalLandingZone, S3LandingZone
from .pipeline.resources import ComputeResource, LakeResource
from .redaction import refuse_credentials
from .storage import Lake

__all__ = ["DemandForecastComponent", "FromEnv"]

# `{{ env.NAME }}` (or `{{ env("NAME") }}`) standing alone: a value Dagster reads when a run starts.
ENV_TEMPLATE = re.compile(r"""^\s*\{\{\s*env(?:\.(\w+)|\(\s*["'](\w+)["']\s*\))\s*\}\}\s*$""")
INT_S3_FIELDS = ("max_attempts",)


class FromEnv(dg.Model):
    """A value left in an environment variable, resolved by Dagster inside the run
    (`dg.EnvVar`): the UI and the run config show the variable's name, never its value."""

    env: str

    def env_var(self, as_int: bool = False) -> dg.EnvVar | Any:
        return dg.EnvVar.int(self.env) if as_int else dg.EnvVar(self.env)


def _deferred(context: dg.ResolutionContext, value: Any) -> str | FromEnv | None:
    """`{{ env.NAME }}` stays an environment variable (`FromEnv`); anything else is resolved."""
    if isinstance(value, str) and (match := ENV_TEMPLATE.match(value)):
        return FromEnv(env=match.group(1) or match.group(2))
    return context.resolve_value(value)


def _secret(context: dg.ResolutionContext, value: Any) -> FromEnv | None:
    """A credential: only ever `{{ env.NAME }}`, never written into the YAML itself."""
    if value is None or isinstance(value, FromEnv):
        return value
    if isinstance(value, str) and (match := ENV_TEMPLATE.match(value)):
        return FromEnv(env=match.group(1) or match.group(2))
    raise ValueError(
        "Credentials are read from the environment, never written in defs.yaml: write "
        '"{{ env.AWS_SECRET_ACCESS_KEY }}" (the name of the variable that holds it).'
    )


Deferred = Annotated[
    str | FromEnv | None,
    dg.Resolver(_deferred, model_field_type=str | None, inject_before_resolve=False),
]
Secret = Annotated[
    FromEnv | None, dg.Resolver(_secret, model_field_type=str | None, inject_before_resolve=False)
]


class S3Options(dg.Resolvable, dg.Model):
    """Where and as whom an `s3://` lake is reached (dagster-aws `S3Resource` fields). Unset
    fields fall back to the AWS SDK's default chain (environment, config files, instance role)."""

    endpoint_url: Deferred = Field(None, description="An S3-compatible store's URL.")
    region_name: Deferred = Field(None, description="AWS region, e.g. eu-central-1.")
    aws_access_key_id: Secret = Field(None, description='"{{ env.NAME }}" only.')
    aws_secret_access_key: Secret = Field(None, description='"{{ env.NAME }}" only.')
    aws_session_token: Secret = Field(None, description='"{{ env.NAME }}" only.')
    profile_name: Deferred = Field(None, description="A named AWS profile.")
    max_attempts: Annotated[
        int | FromEnv | None,
        dg.Resolver(_deferred, model_field_type=int | str | None, inject_before_resolve=False),
    ] = Field(None, description="Attempts per S3 request (the client retries transient faults).")

    def resource(self) -> S3Resource:
        values: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, FromEnv):
                value = value.env_var(as_int=name in INT_S3_FIELDS)
            if value is not None:
                values[name] = value
        return S3Resource(**values)


class SensorOptions(dg.Model):
    """`landing_sensor`: starts runs for new or corrected weekly drops."""

    running: bool = Field(False, description="Start running when the code loads (else: stopped).")
    interval_seconds: int = Field(
        InstanceSettings.sensor_interval_seconds,
        description="Seconds between looks at the landing zone (1 .. 86400).",
    )


class ScheduleOptions(dg.Model):
    """`weekly_forecast_schedule`: a weekly run at a fixed time, a fallback to the sensor."""

    running: bool = Field(False, description="Start running when the code loads (else: stopped).")
    day_of_week: int = Field(
        InstanceSettings.schedule_day_of_week, description="0 = Sunday .. 6 = Saturday."
    )
    hour: int = Field(InstanceSettings.schedule_hour, description="Hour, UTC (0 .. 23).")


class PublicationOptions(dg.Model):
    """`published_forecast`: the table consumers read, moved only by forecasts that passed."""

    enabled: bool = Field(True, description="Publish (off: forecasts are only written).")
    deadline_cron: str | None = Field(
        InstanceSettings.publication_deadline_cron,
        description="By when each week a forecast is published (cron, UTC): the freshness "
        "policy the UI shows as fresh or late; null: none.",
    )


# Every forecast setting, with `ForecastSettings`' types, defaults and descriptions.
ForecastOptions = create_model(
    "ForecastOptions",
    __base__=dg.Model,
    __doc__="Window, horizon, quantiles and model (see `ForecastSettings`).",
    **settings_fields(tuple(ForecastSettings.__dataclass_fields__), ForecastSettings()),
)
# The engine and its memory budget, with `ComputeResource`'s fields.
ComputeOptions = create_model(
    "ComputeOptions",
    __base__=dg.Model,
    __doc__="Where features and forecasts are computed, and within what memory.",
    **{name: (field.annotation, field) for name, field in ComputeResource.model_fields.items()},
)


class DemandForecastScaffolder(dg.Scaffolder):
    """Writes a `defs.yaml` that lists every attribute with its default and description."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        if request.scaffold_format != "yaml":
            dg.scaffold_component(request, {"lake": "lake"})
            return
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(documented_defs_yaml(request.type_name))


@dg.scaffold_with(DemandForecastScaffolder)
class DemandForecastComponent(dg.Component, dg.Resolvable, dg.Model):
    """Weekly 12-week probabilistic demand forecasts for every SKU of one lake.

    Builds the assets `sales_history -> demand_features -> demand_forecast -> published_forecast`
    and `forecast_accuracy`, their checks, the weekly job, the landing sensor and a schedule,
    and the lake, landing and compute resources, all named after `key_prefix`.
    """

    lake: Deferred = Field(
        description="Lake root: a local directory (relative to the project) or "
        's3://bucket/prefix. "{{ env.NAME }}" is read when a run starts. Sales drops land in '
        "<lake>/landing/sales/week=YYYY-MM-DD/ (the landing contract)."
    )
    s3: S3Options | None = Field(None, description="S3 settings of an s3:// lake.")
    first_week: str | None = Field(
        None,
        description="First weekly partition, a Monday (YYYY-MM-DD). Default: the week of the "
        "lake's first drop, read when the definitions load (a local lake; an s3:// lake, or one "
        f"without drops yet, starts at {DEFAULT_FIRST_WEEK}).",
    )
    forecast: ForecastOptions = Field(  # type: ignore[valid-type]
        default_factory=ForecastOptions,
        description="Window, horizon, quantiles and model: the launchpad's defaults.",
    )
    compute: ComputeOptions = Field(  # type: ignore[valid-type]
        default_factory=ComputeOptions, description="Engine and memory budget."
    )
    key_prefix: str | list[str] | None = Field(
        None,
        description="Prefix of every asset key (eu -> eu/sales_history) and, joined by _, of the "
        "job, sensor, schedule, check and resource names.",
    )
    group_name: str | None = Field(
        None, description="One asset group for the graph (default: demand, forecast, accuracy)."
    )
    owners: list[str] = Field(default_factory=list, description="Asset owners, e.g. team:planning.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags of every asset.")
    sensor: SensorOptions = Field(default_factory=SensorOptions, description="landing_sensor.")
    schedule: ScheduleOptions = Field(
        default_factory=ScheduleOptions, description="weekly_forecast_schedule."
    )
    publication: PublicationOptions = Field(
        default_factory=PublicationOptions, description="published_forecast."
    )

    @classmethod
    def from_environment(
        cls, lake: str | None = None, first_week: dt.date | None = None
    ) -> DemandForecastComponent:
        """The project's own code location: configured by `ZEOS_*` and AWS variables.

        `ZEOS_DEPLOYMENT=prod` leaves the lake root in `ZEOS_LAKE` for Dagster to read when a
        run starts; the S3 variables that are set are always left to Dagster. `lake` and
        `first_week`, when given (the CLI's `--lake`), take the place of their variables.
        """
        root: str | FromEnv
        if lake is not None:
            refuse_credentials(lake, "The lake")
            root = lake
        else:
            root = FromEnv(env=LAKE_VAR) if deployment() == "prod" else lake_root()
        s3: dict[str, FromEnv] = {}
        for name, variables in S3_VARS.items():
            variable = next((v for v in variables if v in os.environ), None)
            if variable is not None:
                s3[name] = FromEnv(env=variable)
        day, hour = schedule_time()
        week = first_week or first_week_variable()
        return cls(
            lake=root,
            s3=S3Options(**s3),
            first_week=week.isoformat() if week else None,
            sensor=SensorOptions(interval_seconds=sensor_interval_seconds()),
            schedule=ScheduleOptions(day_of_week=day, hour=hour),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.build_definitions(project_root=context.project_root)

    def build_definitions(self, project_root: Path | None = None) -> dg.Definitions:
        """The instance's definitions; a relative local lake lies under `project_root`."""
        return forecast_definitions(
            self.instance_settings(project_root), **self.resources(project_root)
        )

    def resources(self, project_root: Path | None = None) -> dict[str, Any]:
        """`lake` (what the assets read and write), `landing` (the landing zone the sensor
        watches) and `compute` (engine and memory budget), before the prefix names them."""
        lake, landing = self.lake_resources(project_root)
        compute = ComputeResource(**self.compute.model_dump(exclude_none=True))
        return {"lake": lake, "landing": landing, "compute": compute}

    def instance_settings(self, project_root: Path | None = None) -> InstanceSettings:
        prefix = [self.key_prefix] if isinstance(self.key_prefix, str) else self.key_prefix
        values = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in self.forecast.model_dump().items()
        }
        return InstanceSettings(
            forecast=ForecastSettings(**values),
            first_week=self.partition_start(project_root),
            key_prefix=tuple(prefix or ()),
            group_name=self.group_name,
            owners=tuple(self.owners),
            tags=dict(self.tags),
            sensor_running=self.sensor.running,
            sensor_interval_seconds=self.sensor.interval_seconds,
            schedule_running=self.schedule.running,
            schedule_day_of_week=self.schedule.day_of_week,
            schedule_hour=self.schedule.hour,
            publish=self.publication.enabled,
            publication_deadline_cron=self.publication.deadline_cron,
        )

    def partition_start(self, project_root: Path | None = None) -> dt.date:
        """`first_week`; else the week of the local lake's first drop (its first Monday: a
        misnamed drop is refused when read); else `DEFAULT_FIRST_WEEK`."""
        if self.first_week:
            return dt.date.fromisoformat(self.first_week)
        root = os.environ.get(self.lake.env, "") if isinstance(self.lake, FromEnv) else self.lake
        if not root or root.startswith("s3://"):
            return DEFAULT_FIRST_WEEK  # listing a bucket at load would need its credentials
        if project_root is not None and not os.path.isabs(root):
            root = str(Path(project_root) / root)
        mondays = [week for week in Lake(root).sales_drop_weeks() if week.weekday() == 0]
        return min(mondays, default=DEFAULT_FIRST_WEEK)

    def lake_resources(self, project_root: Path | None = None) -> tuple[LakeResource, LandingZone]:
        """The lake the assets read and write, and the landing zone the sensor watches."""
        s3 = (self.s3 or S3Options()).resource()
        if isinstance(self.lake, FromEnv):
            # The implementation is chosen when the code loads (the root is no secret); the
            # resources keep the variable, which Dagster reads when a run or tick starts.
            root: str = self.lake.env_var()
            remote = os.environ.get(self.lake.env, "").startswith("s3://")
        else:
            root = self.lake or ""
            refuse_credentials(root, "The component's lake")  # before any client or message
            remote = root.startswith("s3://")
            if not remote and project_root is not None and not os.path.isabs(root):
                root = str(Path(project_root) / root)
        landing = S3LandingZone(root=root, s3=s3) if remote else LocalLandingZone(root=root)
        return LakeResource(root=root, s3=s3), landing


def documented_defs_yaml(type_name: str) -> str:
    """A `defs.yaml` with every attribute at its default, each under its description."""
    lines = [
        f"type: {type_name}",
        "",
        "# Weekly demand forecasts for one lake (docs/component.md). Every attribute below is at",
        "# its default; delete the ones you keep as they are.",
        "attributes:",
    ]
    model = DemandForecastComponent
    example = {"lake": "lake"}
    for name, field in model.model_fields.items():
        lines += _comment(field.description, "  ")
        if name == "s3":
            lines += [
                "  # s3:",
                "  #   region_name: eu-central-1",
                '  #   aws_access_key_id: "{{ env.AWS_ACCESS_KEY_ID }}"',
                '  #   aws_secret_access_key: "{{ env.AWS_SECRET_ACCESS_KEY }}"',
            ]
            continue
        value = example.get(name, field.get_default(call_default_factory=True))
        if isinstance(value, dg.Model):
            lines.append(f"  {name}:")
            for inner, inner_field in type(value).model_fields.items():
                lines += _comment(inner_field.description, "    ")
                lines += _value(inner, getattr(value, inner), "    ")
        else:
            lines += _value(name, value, "  ")
    return "\n".join(lines) + "\n"


def _comment(text: str | None, indent: str) -> list[str]:
    # A template such as {{ env.NAME }} stays on one line.
    unbroken = (text or "").replace("{{ ", "{{\0").replace(" }}", "\0}}")
    lines = textwrap.wrap(
        unbroken, 96 - len(indent), initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# "
    )
    return [line.replace("\0", " ") for line in lines]


def _value(name: str, value: Any, indent: str) -> list[str]:
    text = yaml.safe_dump({name: value}, default_flow_style=True, width=200).strip()
    return [indent + text.removeprefix("{").removesuffix("}")]
