"""Secrets out of every message: one function scrubs credentials from any text that may hold a URI.

A lake root, an endpoint or a store's error can carry credentials as user info
(`s3://KEY:SECRET@bucket/x`) or as query options (`s3://bucket/x?access_key=K&secret_key=S`,
pyarrow's way, or a presigned URL's `X-Amz-Signature`). Every path that prints, logs or stores a
lake URI or an error about one passes its text through `redact` first; a lake root that carries
credentials is refused (`refuse_credentials`) before it reaches a run's config.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = ["REDACTED", "CredentialsInUriError", "redact", "refuse_credentials"]

REDACTED = "***"
# Query options that hold a secret, or part of one (matched case-insensitively, as prefixes too:
# `secret_key`, `secretAccessKey`, `X-Amz-Signature`, `X-Amz-Credential`, `sig`, ...).
SECRET_OPTIONS = (
    "access_key",
    "accesskey",
    "aws_access_key",
    "secret",
    "session_token",
    "sessiontoken",
    "token",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "credential",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-credential",
    "apikey",
    "api_key",
    "key",
)
# `scheme://user[:password]@`. A password may hold `/` (AWS secret keys do), which ends the
# authority for a URI parser: after `user:` anything up to the `@` is taken as the password.
_USER_INFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
    r"(?P<user>[^/?#\s@'\":]*:[^\s@'\"]*|[^/?#\s@'\"]*)@"
)
_QUERY_OPTION = re.compile(
    r"(?P<lead>[?&;])(?P<name>(?:" + "|".join(re.escape(o) for o in SECRET_OPTIONS) + r")"
    r"[A-Za-z0-9_.-]*)=(?P<value>[^&;#\s'\"]*)",
    re.IGNORECASE,
)


class CredentialsInUriError(ValueError):
    """A lake root (or endpoint) carries credentials; the message shows it redacted."""


def redact(text: str) -> str:
    """`text` with the user info of every URI and every secret-bearing query value replaced.

    `s3://AKIA..:pw@bucket/x?region=eu&secret_key=s` -> `s3://***@bucket/x?region=eu&secret_key=***`
    """
    text = _USER_INFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _QUERY_OPTION.sub(lambda m: f"{m['lead']}{m['name']}={REDACTED}", text)


def refuse_credentials(root: str, what: str = "A lake root") -> None:
    """Raises `CredentialsInUriError` when `root` carries credentials (user info or query).

    The root travels into run config, metadata and logs: it must never hold a secret.
    """
    if "://" not in root:
        return
    parts = urlsplit(root)
    secret_options = [
        name for name, _ in parse_qsl(parts.query) if redact(f"?{name}=x") != f"?{name}=x"
    ]
    # A secret with a `/` ends the authority early (`s3://KEY:SE/CRET@bucket`): a colon in it
    # (no bucket has one) followed later by an `@` is user info too.
    user_info = "@" in parts.netloc or (":" in parts.netloc and "@" in root.partition("?")[0])
    if user_info or secret_options:
        where = "user info" if user_info else f"query option {secret_options[0]!r}"
        raise CredentialsInUriError(
            f"{what} must not carry credentials in its URI ({where} in {redact(root)}). Set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use the machine's role, or an AWS "
            "profile) instead; see docs/deployment.md."
        )
