"""What the console never shows: credentials and secrets, wherever they turn up in what it reads.

The console reads records, execution histories (every state's input and output, the trigger event included) and
logs, all of which carry text that came from users: a commit message, a manual run's reason, a log line that
prints an environment. It shows none of these values:

- the credentials the console itself runs with (the AWS access key, secret key and session token boto3 reads from
  the environment), wherever they appear;
- values under a key that names a secret (`secret`, `password`, `token`, `credential`, `private_key`,
  `authorization`, `signature`, ...), in JSON at any depth and in `key=value` / `key: value` text;
- text shaped like a credential: AWS access key ids (AKIA/ASIA + 16), GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_,
  github_pat_), a PEM private key block, a bearer token, an HMAC signature header value (sha256=/sha1= + hex, as
  GitHub signs webhook deliveries).

The GitHub webhook secret itself is never read: it stays in Secrets Manager, which the console does not call.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

REDACTED: Final = "[redacted]"

SECRET_KEY: Final = re.compile(
    r"(secret|passw(or)?d|token|credential|private[_-]?key|api[_-]?key|authorization|signature|cookie)",
    re.IGNORECASE,
)
"""A key whose value is not shown."""

CREDENTIAL_VARIABLES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
MIN_EXACT_LENGTH: Final = 12
"""Credential values shorter than this (moto's "testing") are left alone: replacing every "testing" in a log
would hide words, not secrets."""

_PATTERNS: Final[tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]] = (
    # Each pattern with the (lower-case) text it cannot match without: most values hold none, and a substring test
    # is far cheaper than a regular expression (the runs page redacts thousands of values).
    # AWS access key ids (IAM user: AKIA, temporary: ASIA), IAM user guide, "Understanding unique ID prefixes".
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    # GitHub tokens, "About authentication to GitHub": ghp_, gho_, ghu_, ghs_, ghr_ and fine-grained github_pat_.
    (("gh",), re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b")),
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b")),
    (
        ("private key",),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
    ),
    (("bearer",), re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{8,}")),
    # X-Hub-Signature-256 / X-Hub-Signature values (GitHub, "Validating webhook deliveries").
    (("sha1=", "sha256="), re.compile(r"\bsha(?:1|256)=[0-9a-fA-F]{40,64}\b")),
)
_SECRET_WORDS: Final = ("secret", "passw", "token", "credential", "private", "api", "authorization", "signature")
_KEY_VALUE: Final = re.compile(
    r"(?P<key>[A-Za-z0-9_.-]*(?:secret|passw(?:or)?d|token|credential|private[_-]?key|api[_-]?key|authorization|signature)"
    r"[A-Za-z0-9_.-]*)(?P<sep>\"?\s*[=:]\s*\"?)(?P<value>[^\s\",;&]+)",
    re.IGNORECASE,
)


class Redactor:
    """Redacts text and JSON values; built once per console with the credentials it must not show."""

    def __init__(self, exact: Iterable[str] = ()) -> None:
        self.exact = sorted({value for value in exact if len(value) >= MIN_EXACT_LENGTH}, key=len, reverse=True)

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Redactor:
        """The credentials in the environment (boto3 reads them from there), each to be hidden wherever it appears."""
        source = os.environ if environment is None else environment
        return cls(source.get(name, "") for name in CREDENTIAL_VARIABLES)

    def text(self, value: str) -> str:
        """Text with every credential it contains replaced."""
        for secret in self.exact:
            value = value.replace(secret, REDACTED)
        lower = value.lower()
        for needles, pattern in _PATTERNS:
            if any(needle in lower for needle in needles):
                value = pattern.sub(REDACTED, value)
        if not any(word in lower for word in _SECRET_WORDS):
            return value
        return _KEY_VALUE.sub(lambda match: f"{match['key']}{match['sep']}{REDACTED}", value)

    def value(self, value: Any, key: str | None = None) -> Any:
        """A JSON value with every secret-named key's value and every credential-shaped string replaced."""
        if key is not None and SECRET_KEY.search(key) and value not in (None, "", [], {}):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {name: self.value(item, str(name)) for name, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def json_text(self, text: str | None, indent: int = 2) -> str | None:
        """A JSON document (a state's input or output) redacted and pretty-printed; text that is not JSON is
        redacted as text."""
        if text is None:
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.text(text)
        return json.dumps(self.value(parsed), indent=indent, ensure_ascii=False, default=str)
