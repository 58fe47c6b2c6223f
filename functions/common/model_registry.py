"""How sagepipe writes a run into a SageMaker model package, and reads it back.

A package that RegisterModelPackage creates carries, besides the image (by digest) and the model artifact:

- CustomerMetadataProperties: the run (`sagepipe:run-id`), its commit, data version and the model's content
  digest, and every metric as `metric:<name>` (a string, as the API requires). A person's decision made with
  `sagepipe models approve|reject` adds `sagepipe:decided-by`.
- MetadataProperties: CommitId, Repository and GeneratedBy (the execution), SageMaker's own lineage fields.
- ModelPackageDescription: one line naming the run, the commit and the exact data version.

SageMaker limits what these may hold (botocore's SageMaker model: CustomerMetadataProperties has at most 50
entries, keys of 1-128 and values of 1-256 characters of `[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]`; a description has at
most 1,024 characters of `[\\p{L}\\p{M}\\p{Z}\\p{S}\\p{N}\\p{P}]`). A value that does not fit is left out, and the
record of the run (which has every value) stays the reference.

Pure (standard library only) because two programs read the same conventions: the pipeline's functions
(EvaluateGate, RecordModelDecision), deployed from functions/, and `sagepipe models`, installed from the sagepipe
package, which cannot import functions/. The file therefore exists twice, byte for byte:
functions/common/model_registry.py and sagepipe/models/model_registry.py.
tests/static/test_audit_digests_copies.py fails when they differ; edit one, then copy it over the other.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

RUN_ID = "sagepipe:run-id"
COMMIT = "sagepipe:commit"
DATA_VERSION_ID = "sagepipe:data-version-id"
CONTENT_SHA256 = "sagepipe:content-sha256"
DECIDED_BY = "sagepipe:decided-by"
METRIC_PREFIX = "metric:"

MAX_PROPERTIES = 50
MAX_KEY = 128
MAX_VALUE = 256
MAX_DESCRIPTION = 1024

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
APPROVAL_STATUSES = (APPROVED, REJECTED, PENDING)

_PROPERTY_PUNCTUATION = frozenset("_.:/=+-@")


def _property_text(text: str, limit: int) -> bool:
    """Whether SageMaker accepts `text` as a CustomerMetadataProperties key or value: letters, separators,
    numbers and `_.:/=+-@`, 1 to `limit` characters."""
    return (
        0 < len(text) <= limit
        and "\n" not in text
        and all(char in _PROPERTY_PUNCTUATION or unicodedata.category(char)[0] in "LZN" for char in text)
    )


def description_text(text: str) -> str:
    """`text` as a ModelPackageDescription: letters, marks, separators, symbols, numbers and punctuation only
    (control characters dropped), at most 1,024 characters."""
    kept = "".join(char for char in text if unicodedata.category(char)[0] in "LMZSNP")
    return kept if len(kept) <= MAX_DESCRIPTION else kept[: MAX_DESCRIPTION - 1] + "…"


def format_metric(value: float) -> str:
    """A metric value as text: the shortest decimal that reads back as the same float."""
    return repr(float(value))


def registration_properties(
    *,
    run_id: str,
    commit: str | None,
    data_version_id: str | None,
    content_sha256: str | None,
    metrics: Mapping[str, float],
) -> tuple[dict[str, str], list[str]]:
    """The CustomerMetadataProperties of a run's package, and the names of what had to be left out (a value
    SageMaker would refuse, or more than 50 entries)."""
    wanted: list[tuple[str, str]] = [
        (RUN_ID, run_id),
        (COMMIT, commit or ""),
        (DATA_VERSION_ID, data_version_id or ""),
        (CONTENT_SHA256, content_sha256 or ""),
    ]
    wanted += [
        (METRIC_PREFIX + name, format_metric(value))
        for name, value in sorted(metrics.items())
        if isinstance(value, int | float) and math.isfinite(value)
    ]
    properties: dict[str, str] = {}
    left_out: list[str] = []
    for key, value in wanted:
        if not value:
            continue
        # One slot is kept free for the decision `sagepipe models` records (DECIDED_BY).
        if _property_text(key, MAX_KEY) and _property_text(value, MAX_VALUE) and len(properties) < MAX_PROPERTIES - 1:
            properties[key] = value
        else:
            left_out.append(key)
    return properties, left_out


def property_value(text: str) -> str | None:
    """`text` if SageMaker accepts it as a CustomerMetadataProperties value, else None."""
    return text if _property_text(text, MAX_VALUE) else None


def metrics_of(properties: Mapping[str, str] | None) -> dict[str, float]:
    """The metrics a package carries (`metric:<name>` properties); values that are not numbers are skipped."""
    metrics: dict[str, float] = {}
    for key, value in (properties or {}).items():
        if not key.startswith(METRIC_PREFIX):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            metrics[key.removeprefix(METRIC_PREFIX)] = number
    return metrics


def run_id_of(properties: Mapping[str, str] | None) -> str | None:
    return (properties or {}).get(RUN_ID) or None


def version_of(model_package_arn: str) -> int | None:
    """A versioned package's version: the last part of its ARN (`.../model-package/<group>/<version>`)."""
    last = model_package_arn.rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else None


def who(description: Mapping[str, Any]) -> str | None:
    """Who last changed a package, as SageMaker recorded it (DescribeModelPackage's LastModifiedBy, else
    CreatedBy: the IAM identity's ARN, else the Studio user profile), or the identity `sagepipe models`
    recorded with its decision."""
    for field in ("LastModifiedBy", "CreatedBy"):
        context = description.get(field) or {}
        identity = (context.get("IamIdentity") or {}).get("Arn") or context.get("UserProfileName")
        if identity:
            return str(identity)
    decided = (description.get("CustomerMetadataProperties") or {}).get(DECIDED_BY)
    return str(decided) if decided else None
