"""How a failed step is retried: one policy for every asset, safe because every write is atomic.

A step that fails on a transient fault (the store unreachable for a few seconds, a connection
reset in mid-upload) is run again from the start: it re-reads its inputs and replaces its
partitions whole, so a retry never duplicates or half-writes anything. Within a step, the S3
client already retries each request (`ZEOS_S3_MAX_ATTEMPTS`); this policy covers outages longer
than those attempts. Failures that a retry cannot fix (a drop breaking the contract, a forecast
whose checks did not pass) raise `dg.Failure(allow_retries=False)` and fail at once.
"""

from __future__ import annotations

import dagster as dg

from ..core.contract import LandingDataError

__all__ = ["STEP_RETRY_POLICY", "landing_failure"]

STEP_RETRIES = 3
# Dagster waits (2^n - 1) x this before retry n, ± this: about 1, 3 and 7 s, some 11 s of
# patience on top of the client's own. Longer outages fail the run (see the README).
STEP_RETRY_DELAY_SECONDS = 1.0

STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=STEP_RETRIES,
    delay=STEP_RETRY_DELAY_SECONDS,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def landing_failure(error: LandingDataError) -> dg.Failure:
    """The step's failure for landing data that breaks the contract: no retry, the same bytes
    fail the same way. Its metadata names the file and the column."""
    return dg.Failure(
        description=str(error),
        metadata={"file": error.file, "column": error.column},
        allow_retries=False,
    )
