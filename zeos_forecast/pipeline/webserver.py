"""A running Dagster webserver, through its public GraphQL API (the one the UI uses).

The one place in the package that speaks it: `zeos-forecast backfill --webserver` launches and
follows a Dagster backfill here, and the end-to-end tests drive their deployment with the same
client and documents. Plain HTTP: Dagster's Python internals are not public, its GraphQL API is.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ..redaction import redact

__all__ = [
    "BACKFILL",
    "BACKFILL_DONE",
    "LAUNCH_BACKFILL",
    "Webserver",
    "WebserverError",
    "WebserverUnreachable",
]

# Seconds one request may take: the webserver answers a status query in well under a second.
REQUEST_TIMEOUT_SECONDS = 30

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
# A backfill's status and its runs (each with its partition tag and its assets).
BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status error { message }
      runs { runId status tags { key value } assetSelection { path } }
    }
    ... on Error { message }
  }
}
"""
# The statuses after which a backfill launches no more runs (`BulkActionStatus`).
BACKFILL_DONE = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
)


class WebserverError(RuntimeError):
    """The webserver did not answer, or refused a request; the message names it, redacted."""


class WebserverUnreachable(WebserverError):
    """Nothing answers at the webserver's address (not yet, or no longer)."""


@dataclass(frozen=True)
class Webserver:
    """The webserver at `url` (`http://127.0.0.1:3000`); user info in it is sent as basic auth."""

    url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise ValueError(
                f"{self.shown} is not the address of a webserver: give its URL, e.g. "
                "http://127.0.0.1:3000."
            )
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def __repr__(self) -> str:  # never the credentials, not even in a traceback
        return f"Webserver({self.shown!r})"

    @property
    def shown(self) -> str:
        """The address as messages show it: credentials replaced (`redaction.redact`)."""
        return redact(self.url)

    def link(self, path: str) -> str:
        """A page of the UI, e.g. `/runs/b/<backfill id>`, without credentials."""
        return f"{self.shown}{path}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of the answer to `query`.

        Raises:
            WebserverError: when nothing answers at the address, the answer is not Dagster's, or
                it holds GraphQL errors.
        """
        parts = urlsplit(self.url)
        headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        request = urllib.request.Request(
            urlunsplit(parts._replace(path=parts.path + "/graphql")),
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            question = (
                "are its credentials right?"
                if error.code in (401, 403)
                else "is the address that of a Dagster webserver (--webserver)?"
            )
            raise WebserverError(
                f"The Dagster webserver at {self.shown} answered HTTP {error.code} to POST "
                f"/graphql: {question}"
            ) from None
        except OSError as error:  # refused, unknown host, timed out
            reason = getattr(error, "reason", None) or error
            raise WebserverUnreachable(
                f"The Dagster webserver at {self.shown} does not answer ({redact(str(reason))}): "
                "start it (`make dev`, or dagster-webserver and dagster-daemon on the same "
                "DAGSTER_HOME), or pass its address to --webserver."
            ) from None
        try:
            body = json.loads(answer)
        except ValueError:
            raise WebserverError(
                f"The answer of {self.shown} to POST /graphql is not JSON: is the address that "
                "of a Dagster webserver (--webserver)?"
            ) from None
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
            raise WebserverError(
                f"The Dagster webserver at {self.shown} refused the request: {redact(messages)}"
            )
        return body["data"]
