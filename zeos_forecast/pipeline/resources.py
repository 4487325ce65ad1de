"""The lake as a Dagster resource: assets and sensors get a `Lake`, tests swap the root."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow.fs as pafs
from dagster_aws.s3 import S3Resource
from pydantic import Field

from ..core.compute import ENGINES, EngineSettings
from ..redaction import redact, refuse_credentials
from ..storage import Lake, s3_filesystem

__all__ = ["LAKE_TAG", "ComputeResource", "LakeResource", "lake_tags"]

# The run tag naming the lake a run used (credentials redacted): the UI's runs list filters by
# it, so two lakes on one instance stay apart.
LAKE_TAG = "zeos/lake"

# S3Resource fields that hold credentials: never shown by `repr`.
SECRET_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


class LakeResource(dg.ConfigurableResource):
    """Where derived datasets live and landing drops arrive: a local path or `s3://bucket/prefix`.

    For an `s3://` root, `s3` (dagster-aws `S3Resource`, fields set through `dg.EnvVar` in a
    deployment) says where and as whom: `endpoint_url` (an S3-compatible store), `region_name`,
    `aws_access_key_id` / `aws_secret_access_key` / `aws_session_token`, `profile_name`,
    `use_unsigned_session`, `use_ssl` and `max_attempts`. Without `s3`, or with its fields unset,
    the AWS SDK's default chain applies (environment, config files, instance or task role).
    A local root ignores `s3`.
    """

    root: str = Field(description="A local directory or s3://bucket/prefix.")
    s3: S3Resource | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Tags the run with its lake, whoever launched it (the UI, a sensor, the CLI)."""
        run = context.dagster_run
        if context.instance is not None and run is not None and LAKE_TAG not in run.tags:
            _require_resolved("root", self.root)
            context.instance.add_run_tags(run.run_id, lake_tags(self.root))

    def open(self) -> Lake:
        _require_resolved("root", self.root)
        refuse_credentials(self.root)  # before any client sees it: its errors echo the bucket
        if not self.root.startswith("s3://") or self.s3 is None:
            return Lake(self.root)
        bucket = self.root.removeprefix("s3://").split("/", 1)[0]
        filesystem = _filesystem(self.s3, bucket)
        return Lake(
            self.root,
            filesystem=filesystem,
            endpoint=self.s3.endpoint_url,
            list_objects=_ObjectLister(self.s3),
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (_RedactedS3(value) if isinstance(value, S3Resource) else value)


class ComputeResource(dg.ConfigurableResource):
    """Where the features and the forecast are computed, and within what memory.

    `auto` keeps a window in memory while it fits the budget and otherwise builds features and
    scores in SKU shards with a bounded training sample (`sharded`), on one thread per core of
    the run's process. `dask` sends the shards to the worker processes of a `LocalCluster`, or
    with `dask_address` to an existing cluster. See `core/engine.py` and the README (Scale:
    engines).
    """

    engine: str = Field("auto", description=f"One of {', '.join(ENGINES)}.")
    max_memory_gb: float | None = Field(
        None, description="Memory budget of a run in GiB (default: half the machine's memory)."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler address, e.g. tcp://scheduler:8786 (engine dask)."
    )
    workers: int | None = Field(
        None,
        description="Shards worked on at once on this machine: threads of the sharded engine, "
        "worker processes of the dask engine's LocalCluster (default: one per core).",
    )

    shard_rows: int | None = Field(
        None, description="Rows per shard (default: from the memory budget)."
    )

    def settings(self) -> EngineSettings:
        return EngineSettings(
            engine=self.engine,
            max_memory_gb=self.max_memory_gb,
            dask_address=self.dask_address,
            workers=self.workers,
            shard_rows_override=self.shard_rows,
        )


def _filesystem(s3: S3Resource, bucket: str) -> pafs.S3FileSystem:
    for name in ("endpoint_url", "region_name", "profile_name", "max_attempts", *SECRET_FIELDS):
        _require_resolved(f"s3.{name}", getattr(s3, name))
    if s3.verify is False:
        raise ValueError(
            "LakeResource.s3.verify=False is not supported: pyarrow's S3 filesystem always "
            "verifies TLS certificates (use an http:// endpoint_url for a local test store)."
        )
    access_key, secret_key = s3.aws_access_key_id, s3.aws_secret_access_key
    token = s3.aws_session_token
    if s3.profile_name and not (access_key or secret_key):
        access_key, secret_key, token = _profile_credentials(s3.profile_name)
    return s3_filesystem(
        bucket=bucket,
        endpoint_url=s3.endpoint_url,
        region=s3.region_name,
        access_key=access_key,
        secret_key=secret_key,
        session_token=token,
        anonymous=s3.use_unsigned_session,
        use_ssl=s3.use_ssl,
        max_attempts=s3.max_attempts,
    )


class _ObjectLister:
    """Lists objects with their ETags through boto3 (pyarrow's listings carry no ETag).

    It holds the S3 settings as plain values, not the resource (which holds the run's logger)
    nor a client, so that a `Lake` holding it pickles: the dask engine ships the lake's readers
    to its workers. A request the client gave up on raises an `OSError` that the lake reports as
    a store failure (`LakeStoreError`, naming the lake and endpoint), as it does pyarrow's.
    """

    def __init__(self, s3: S3Resource):
        self.settings = {
            "max_attempts": s3.max_attempts,
            "region_name": s3.region_name,
            "endpoint_url": s3.endpoint_url,
            "use_unsigned_session": s3.use_unsigned_session,
            "profile_name": s3.profile_name,
            "use_ssl": s3.use_ssl,
            "verify": s3.verify,
            **{name: getattr(s3, name) for name in SECRET_FIELDS},
        }
        self._client = None

    def __repr__(self) -> str:
        return "_ObjectLister(boto3)"

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "_client": None}  # a client does not travel

    def __call__(self, bucket: str, prefix: str) -> Iterator[tuple[str, int, str, float]]:
        from botocore.exceptions import BotoCoreError, ClientError
        from dagster_aws.s3.utils import construct_s3_client

        try:
            if self._client is None:
                self._client = construct_s3_client(**self.settings)
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item["LastModified"].timestamp()
                    yield item["Key"], int(item["Size"]), item["ETag"].strip('"'), modified
        except (BotoCoreError, ClientError) as error:
            raise OSError(
                f"AWS Error during ListObjectsV2 ({type(error).__name__}): {error}"
            ) from error


def _profile_credentials(profile: str) -> tuple[str | None, str | None, str | None]:
    """A named AWS profile's credentials, resolved as boto3 does (pyarrow takes no profile)."""
    import boto3

    credentials = boto3.Session(profile_name=profile).get_credentials()
    if credentials is None:
        raise ValueError(f"AWS profile {profile!r} has no credentials.")
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def _require_resolved(name: str, value: object) -> None:
    # An EnvVar holds the variable's *name*; only Dagster resolves it (in a run, or through
    # dg.build_resources).
    env_var_name = getattr(value, "env_var_name", None)  # EnvVar and EnvVar.int
    if env_var_name is not None:
        raise RuntimeError(
            f"LakeResource.{name} is still the unresolved EnvVar({env_var_name!r}): open "
            "the lake inside a run, through dg.build_resources, or with "
            "zeos_forecast.pipeline.deployment.open_lake()."
        )


class _RedactedS3:
    """How a nested `S3Resource` shows in `repr`: every field except the credentials."""

    def __init__(self, s3: S3Resource):
        self._s3 = s3

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={'<redacted>' if name in SECRET_FIELDS and value else repr(value)}"
            for name, value in self._s3.__repr_args__()
        )
        return f"S3Resource({fields})"


def lake_tags(root: str) -> dict[str, str]:
    """`{"zeos/lake": root}` with any credentials redacted (`redaction.redact`)."""
    return {LAKE_TAG: redact(root)}
