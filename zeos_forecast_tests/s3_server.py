"""A real S3 API for tests: moto's server on 127.0.0.1, reached over HTTP by every client.

`moto_s3_server()` starts moto's server (the `moto_server` command, `python -m moto.server`) on a
free port, waits a bounded time for it to accept connections, and stops it on exit, also when a
test fails; a test module wraps it in a fixture. `S3Server` hands out boto3, pyarrow and s3fs
clients and fresh buckets. The credentials are fake but distinctive, so tests can prove they
never leak.

Why a process and not `moto.server.ThreadedMotoServer`: an in-process server needs the GIL to
answer, and pyarrow completes an S3 upload from a C++ destructor while holding it. Against an
in-process moto that upload stalls until curl times out and is dropped, so a bug that publishes
an empty object over a partition (a parquet writer streaming straight to S3 that fails) passes
there and only shows up against a real, separate server. A separate process behaves like S3.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.fs as pafs
import s3fs
from dagster_aws.s3 import S3Resource
from local_servers import free_port, stop

from zeos_forecast.pipeline.resources import LakeResource

# Fake, but distinctive enough that finding them anywhere is never a coincidence.
ACCESS_KEY = "AKIAZEOSTESTQ7X4K2M9"
SECRET_KEY = "zeosFakeSecret/Wq8tLr3Vn5Xb7Zc9Kp2Hj4Df6Gs1"
REGION = "eu-central-1"
START_SECONDS = 15.0
# Anything that would betray the credentials, the secret's slash-free start included.
LEAKS = (ACCESS_KEY, SECRET_KEY, SECRET_KEY.split("/")[0])


@dataclass(frozen=True)
class S3Server:
    """How to reach the moto server, with each client the tests use."""

    endpoint_url: str

    @property
    def host_port(self) -> str:
        return self.endpoint_url.removeprefix("http://")

    def s3_resource(self, **overrides) -> S3Resource:
        fields = {
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "max_attempts": 2,
        }
        return S3Resource(**{**fields, **overrides})

    def lake_resource(self, root: str) -> LakeResource:
        return LakeResource(root=root, s3=self.s3_resource())

    def boto3_client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def pyarrow_fs(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            scheme="http",
            endpoint_override=self.host_port,
        )

    def s3fs_fs(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            client_kwargs={"endpoint_url": self.endpoint_url, "region_name": REGION},
            skip_instance_cache=True,
        )

    def create_bucket(self) -> str:
        name = f"zeos-{uuid.uuid4().hex[:12]}"
        self.boto3_client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name


def assert_no_credentials(texts: Iterable[str | bytes], where: str) -> None:
    for text in texts:
        data = text if isinstance(text, bytes) else text.encode()
        for leak in LEAKS:
            assert leak.encode() not in data, f"a credential appears in {where}"


def assert_instance_has_no_credentials(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    """Run records, every event of the runs, and every byte the instance stored on disk."""
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        assert_no_credentials([dg.serialize_value(run)], f"run {run_id}")
        events = instance.all_logs(run_id)
        assert events
        assert_no_credentials([dg.serialize_value(e) for e in events], f"events of {run_id}")
    files = [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert_no_credentials([path.read_bytes()], str(path))


@contextmanager
def moto_s3_server(start_seconds: float = START_SECONDS, tries: int = 3) -> Iterator[S3Server]:
    """moto's S3 server in its own process on 127.0.0.1, for the duration of the block."""
    with tempfile.TemporaryFile() as log:
        for _ in range(tries):
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _wait_until_listening(server, port, start_seconds):
                    yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
                    return
            finally:
                stop(server, timeout=10)
            # The server exited early: most likely another process took the port meanwhile.
        log.seek(0)
        output = log.read().decode(errors="replace")[-2_000:]
        raise RuntimeError(f"moto's S3 server did not start in {tries} tries; it said:\n{output}")


def _wait_until_listening(server: subprocess.Popen, port: int, seconds: float) -> bool:
    """True once the server accepts connections; False if it exited; raises after `seconds`."""
    deadline = time.monotonic() + seconds
    while server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"moto's S3 server did not listen on port {port} within {seconds:.0f} s"
                ) from None
            time.sleep(0.05)
    return False
