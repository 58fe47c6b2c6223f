"""GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed on the secret>`.

Pure functions, no AWS: the handler fetches the secret, this module only compares. The comparison is constant
time (`hmac.compare_digest`), and the signature covers the exact bytes received, never re-serialised JSON.

The signature covers the body only, not the headers and not a timestamp: a captured delivery can be replayed,
with any `X-GitHub-Delivery`. Redeliveries of the same delivery id are absorbed by the webhook's idempotency; a
replay under a new id reaches the pipeline, whose (commit, data version) claim starts no second run.
"""

import hashlib
import hmac
import re
from enum import StrEnum

PREFIX = "sha256="
_HEADER = re.compile(r"sha256=[0-9a-f]{64}", re.ASCII)
"""Exactly what GitHub sends: the algorithm, then 64 lowercase hex digits. Anything else is refused unread."""


class SignatureCheck(StrEnum):
    """The outcome of a verification. Only OK authenticates; the other three are all "401 invalid signature"."""

    OK = "ok"
    MISSING = "missing"
    MALFORMED = "malformed"
    MISMATCH = "mismatch"


def sign(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`: for tests and for replaying a sample delivery."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_header(header: str | None) -> SignatureCheck | None:
    """MISSING or MALFORMED when the header cannot be a signature at all, else None (the HMAC decides).

    Lets the handler refuse such requests before it fetches the secret.
    """
    if header is None:
        return SignatureCheck.MISSING
    if not _HEADER.fullmatch(header):
        return SignatureCheck.MALFORMED
    return None


def verify(secret: bytes, body: bytes, header: str | None) -> SignatureCheck:
    """Check `header` against the HMAC-SHA256 of the raw `body` bytes keyed on `secret`."""
    if not secret:
        # An empty key makes every signature computable by anyone: a configuration error, never an OK.
        raise ValueError("the webhook secret is empty")
    if header is None:
        return SignatureCheck.MISSING
    if not _HEADER.fullmatch(header):
        return SignatureCheck.MALFORMED
    expected = sign(secret, body).encode("ascii")
    # The header matched an ASCII-only pattern, so encoding it cannot fail.
    return SignatureCheck.OK if hmac.compare_digest(expected, header.encode("ascii")) else SignatureCheck.MISMATCH
