"""What a run record holds, read by a person: grouped fields, what an older record lacks, and console links.

The fields are docs/audit-record.md's. Records are kept as a DynamoDB document client reads them (numbers as
Decimal, so a record can be compared with its ledger entry exactly); `plain()` turns them into JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from boto3.dynamodb.types import TypeDeserializer

from sagepipe.runs.audit_digests import LEDGER_FIELDS

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "SKIPPED", "DUPLICATE", "REJECTED", "CACHED"})

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "trigger",
        (
            "trigger_kind",
            "trigger_source",
            "triggered_by",
            "triggered_at",
            "trigger_event_id",
            "trigger_source_ip",
            "trigger_reason",
            "rerun_of",
            "rerun_request_id",
            "environment",
            "started_at",
            "finished_at",
        ),
    ),
    (
        "code",
        (
            "commit_id",
            "commit_repository",
            "commit_branch",
            "commit_author",
            "commit_message",
            "commit_url",
            "committed_at",
            "commit_image_tree",
        ),
    ),
    (
        "data",
        (
            "data_ref",
            "data_bucket",
            "data_key",
            "data_version_id",
            "data_etag",
            "data_size_bytes",
            "data_dataset_prefix",
            "data_manifest_uri",
            "data_manifest_sha256",
            "data_object_count",
            "data_sha256",
            "data_sha256_source",
        ),
    ),
    ("image", ("image_uri", "image_digest", "image_built", "image_build_id")),
    ("training cache", ("cache_decision", "cache_reason", "cached_from", "forced", "cache_key", "cache_key_parts")),
    (
        "training",
        (
            "training_job_name",
            "training_job_arn",
            "training_job_status",
            "instance_type",
            "instance_count",
            "volume_size_gb",
            "max_runtime_seconds",
            "hyperparameters",
            "timings",
        ),
    ),
    (
        "result",
        (
            "status",
            "metrics",
            "artifact_uri",
            "artifact_version_id",
            "artifact_sha256",
            "artifact_size_bytes",
            "model_content_sha256",
            "failed_stage",
            "error",
            "failure_reason",
            "cause",
            "skip_reason",
            "duplicate_of",
        ),
    ),
    ("ledger", LEDGER_FIELDS),
)
"""`runs show`'s sections, in order. Fields not listed (a newer record's) are shown under "other"."""

_IDENTITY = frozenset({"pk", "sk", "run_id", "execution_arn", "schema_version", "updated_at"})

SCHEMA_2_FIELDS: dict[str, tuple[str, ...]] = {
    "every run": ("instance_count", "volume_size_gb"),
    "SUCCEEDED": ("model_content_sha256",),
    "final": LEDGER_FIELDS,
}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A record from DynamoDB's typed JSON, numbers as Decimal."""
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def plain(value: Any) -> Any:
    """JSON values: Decimals as int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return value


def groups(record: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The record's fields by section (trigger, code, data, image, training, result, ledger, other)."""
    listed = {name for _, names in GROUPS for name in names} | _IDENTITY
    sections = [(title, [(name, record[name]) for name in names if name in record]) for title, names in GROUPS]
    other = [(name, record[name]) for name in sorted(record) if name not in listed]
    if other:
        sections.append(("other", other))
    return [(title, fields) for title, fields in sections if fields]


def lacks(record: Mapping[str, Any]) -> list[str]:
    """What this record lacks that a record of schema 2 with its status has: a record written before the
    ledger and the content digest existed is shown with this list, not refused."""
    status = str(record.get("status", ""))
    missing: list[str] = []
    has_trigger = "trigger_kind" in record
    if has_trigger:
        missing += [name for name in SCHEMA_2_FIELDS["every run"] if name not in record]
    if status == "SUCCEEDED":
        missing += [name for name in SCHEMA_2_FIELDS["SUCCEEDED"] if name not in record]
    if status in FINAL_STATUSES and not all(name in record for name in LEDGER_FIELDS):
        missing.append("ledger entry")
    return missing


def why_it_lacks(record: Mapping[str, Any]) -> str:
    version = record.get("schema_version")
    if version is not None and int(version) < 2:
        return f"written with schema {int(version)}, before the content digest and the ledger existed"
    return "its sealing failed or has not happened yet (see the run's notification)"


def duration_seconds(record: Mapping[str, Any]) -> float | None:
    """finished_at minus started_at, when both are known."""
    try:
        started = datetime.fromisoformat(str(record["started_at"]).replace("Z", "+00:00"))
        finished = datetime.fromisoformat(str(record["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (finished - started).total_seconds()


def _console(region: str, partition: str) -> str:
    host = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}.get(
        partition, "console.aws.amazon.com"
    )
    return f"https://{region}.{host}"


def links(record: Mapping[str, Any]) -> dict[str, str]:
    """Console links: the execution, the training job's logs, the image build. The formats are the ones the
    state machine's notifications use (statemachine/pipeline.asl.json, NotifySuccess), and the CodeBuild
    console's build page."""
    arn = str(record.get("execution_arn", ""))
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "states":
        return {}
    partition, region, account = parts[1], parts[3], parts[4]
    console = _console(region, partition)
    found = {"execution": f"{console}/states/home?region={region}#/v2/executions/details/{arn}"}
    job = record.get("training_job_name")
    if job:
        found["training logs"] = (
            f"{console}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
            f"$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D{job}"
        )
    build = record.get("image_build_id")
    if build:
        project = str(build).split(":", 1)[0]
        found["build"] = (
            f"{console}/codesuite/codebuild/{account}/projects/{project}/build/{quote(str(build), safe='')}"
            f"/?region={region}"
        )
    return found


def short_principal(value: Any) -> str:
    """`arn:aws:iam::123:user/ana` -> `user/ana`; a GitHub login or an account id as it is."""
    text = str(value or "")
    if text.startswith("arn:"):
        return text.split(":", 5)[-1]
    return text
