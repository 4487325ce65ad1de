"""The code location's resources for a deployment, chosen by `ZEOS_DEPLOYMENT` (local | prod).

- `local` (default): the lake root is `ZEOS_LAKE` or `./lake`, read when the code loads, so the
  embedded setup works with no configuration at all.
- `prod`: the lake root is `dg.EnvVar("ZEOS_LAKE")`, required and resolved when a run starts
  (the UI shows the variable's name, never a value).

Resources: `lake` (`LakeResource`, what the assets read and write), `landing` (the `LandingZone` the
sensor watches: the lake's landing zone, local or S3) and `compute` (`ComputeResource`: engine and
memory budget, set per run or in the deployment). In both deployments an `s3://` root is reached
through an `S3Resource` nested in each of them, whose fields are `dg.EnvVar`s of the variables in
`environment.S3_VARS` that are set (`ZEOS_S3_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, ...): Dagster resolves them inside the run, so secrets never sit in code,
run config, logs or metadata. Unset variables are left out (an EnvVar of an unset variable fails the
run at launch), and what is left out falls back to the AWS SDK's default chain (say an instance or
task role).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from ..redaction import refuse_credentials
from ..storage import Lake
from .environment import LAKE_VAR, S3_VARS, deployment, lake_root
from .landing_zone import LandingZone, LocalLandingZone, S3LandingZone
from .resources import LakeResource

__all__ = [
    "lake_resource",
    "landing_resource",
    "open_lake",
    "resources_for_deployment",
    "s3_resource",
]

INT_FIELDS = frozenset({"max_attempts"})


def resources_for_deployment() -> dict[str, Any]:
    """The code location's resources for `ZEOS_DEPLOYMENT`: `lake`, `landing` and `compute`,
    exactly as its `DemandForecastComponent.from_environment()` builds them."""
    from ..component import DemandForecastComponent  # the component builds on this layer

    return DemandForecastComponent.from_environment().resources()


def lake_resource(root: str | None = None) -> LakeResource:
    """The deployment's lake resource; `root` (say the CLI's `--lake`) replaces the default root."""
    if root:
        refuse_credentials(root)  # before it reaches any client, run config or message
    default_root = dg.EnvVar(LAKE_VAR) if deployment() == "prod" else lake_root()
    return LakeResource(root=root or default_root, s3=s3_resource())


def landing_resource(root: str | None = None) -> LandingZone:
    """The landing zone of the deployment's lake (or of `root`), with the same S3 settings."""
    if root is None and deployment() == "prod":
        # The implementation is chosen when the code loads (reading the root, which is no
        # secret); the resource itself keeps the EnvVar, resolved when the sensor runs.
        kind, value = os.environ.get(LAKE_VAR, ""), dg.EnvVar(LAKE_VAR)
    else:
        kind = value = root or lake_root()
        refuse_credentials(kind)
    if kind.startswith("s3://"):
        return S3LandingZone(root=value, s3=s3_resource())
    return LocalLandingZone(root=value)


def s3_resource() -> S3Resource:
    """An `S3Resource` whose fields are `dg.EnvVar`s of the S3 variables that are set."""
    fields: dict[str, Any] = {}
    for field, names in S3_VARS.items():
        name = next((n for n in names if n in os.environ), None)
        if name is not None:
            fields[field] = dg.EnvVar.int(name) if field in INT_FIELDS else dg.EnvVar(name)
    return S3Resource(**fields)


def open_lake(root: str | None = None) -> Lake:
    """The `Lake` a run of this deployment would open, for code outside runs (CLI, launcher).

    Dagster resolves the `EnvVar`s exactly as in a run (`dg.build_resources`), so the CLI and the
    runs it launches reach the same store with the same settings.
    """
    resource = lake_resource(root)
    if not resource.root.startswith("s3://") and not isinstance(resource.root, dg.EnvVar):
        return Lake(resource.root)
    with dg.build_resources({"lake": resource}) as resources:
        return resources.lake.open()
