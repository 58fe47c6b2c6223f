"""Every read `sagepipe runs` makes of the runs table: a GetItem, or a Query on one of its indexes. Never a Scan.

The indexes are template.yaml's (RunsTable.GlobalSecondaryIndexes; tests/static/test_runs_indexes.py checks
they agree): each is keyed by what a command looks up and sorted by `started_at`, and read newest first.
Only run records have `started_at`, so claims, pointers and idempotency records are in none of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from sagepipe.runs.errors import RunsError
from sagepipe.runs.records import deserialize

INDEX_BY_TIME: Final = "runs-by-time"
INDEX_BY_STATUS: Final = "runs-by-status"
INDEX_BY_COMMIT: Final = "runs-by-commit"
INDEX_BY_DATA: Final = "runs-by-data"
INDEX_BY_MODEL: Final = "runs-by-model"
INDEX_KEYS: Final[Mapping[str, str]] = {
    INDEX_BY_TIME: "sk",
    INDEX_BY_STATUS: "status",
    INDEX_BY_COMMIT: "commit_id",
    INDEX_BY_DATA: "data_ref",
    INDEX_BY_MODEL: "model_content_sha256",
}
"""Each index's partition key; every index's sort key is SORT_KEY."""
SORT_KEY: Final = "started_at"
RUN_RECORD_SK: Final = "RECORD"
"""The sort key of every run record, and so the one partition of runs-by-time that holds them all."""

MAX_LIMIT: Final = 1000
MAX_CALLS_PER_PAGE: Final = 10
"""With a filter (--commit with --status), a page may take several Query calls; this bounds them, and the
page then ends early with a --next token."""

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_COMMIT_PREFIX = re.compile(r"^[0-9a-f]{4,39}$")
_AGE = re.compile(r"^(?P<amount>[0-9]+)(?P<unit>[dhm])$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_token: str | None
    index: str
    calls: int


def run_id_of(text: str) -> str:
    """A run id, or the execution ARN whose name it is."""
    candidate = text.strip()
    if candidate.startswith("arn:") and ":execution:" in candidate:
        candidate = candidate.rsplit(":", 1)[-1]
    if not candidate or len(candidate) > 80 or any(char.isspace() for char in candidate):
        raise RunsError(f"{text!r} is not a run id (the execution name, as `sagepipe runs list` shows it)")
    return candidate


def parse_since(text: str, now: datetime | None = None) -> str:
    """`--since`: a date, a time, or an age (7d, 12h, 30m), as the UTC ISO 8601 prefix `started_at` sorts by."""
    moment: datetime
    age = _AGE.match(text.strip())
    if age:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[age["unit"]]
        moment = (now or datetime.now(UTC)) - timedelta(**{unit: int(age["amount"])})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RunsError(
                f"--since {text!r}: give a date (2026-11-01), a time (2026-11-01T09:30Z) or an age (7d, 12h, 30m)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def resolve_commit(text: str, repository: Path | None) -> str:
    """A full commit SHA; an abbreviated one is expanded by the git repository at hand, if there is one."""
    commit = text.strip().lower()
    if _COMMIT.match(commit):
        return commit
    if _COMMIT_PREFIX.match(commit) and repository is not None:
        try:
            full = subprocess.run(
                ["git", "-C", str(repository), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except OSError:
            full = ""
        if _COMMIT.match(full):
            return full
    raise RunsError(
        f"--commit {text!r} is not a full 40-character SHA (git rev-parse gives one), "
        "nor an abbreviation of a commit in the git repository here"
    )


def data_ref_of(uri: str) -> str:
    """The data version as records name it (`data_ref`): s3://bucket/key?versionId=..., key decoded."""
    from sagepipe.manual import ManualRunError, parse_data_uri

    try:
        data = parse_data_uri(uri)
    except ManualRunError as error:
        raise RunsError(str(error)) from None
    return f"s3://{data.bucket}/{data.key}?versionId={data.version_id}"


def model_digest_of(text: str) -> str:
    digest = text.strip().lower()
    if not _SHA256.match(digest):
        raise RunsError(f"--model-sha256 {text!r} is not a sha256 (64 hexadecimal characters)")
    return digest


def _encode_token(index: str, key: Mapping[str, Any]) -> str:
    raw = json.dumps({"index": index, "key": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, index: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise RunsError("--next is not a token a `sagepipe runs` command printed") from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("key"), dict):
        raise RunsError("--next is not a token a `sagepipe runs` command printed")
    if decoded.get("index") != index:
        raise RunsError("this --next token continues another query: repeat that query's options with it")
    key: dict[str, Any] = decoded["key"]
    return key


class RunsTable:
    """The runs table, read through GetItem and Query only."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.name = table_name

    # ------------------------------------------------------------------------------------------------- one run
    def get(self, run: str) -> dict[str, Any]:
        """The record of a run (consistent read). An unknown run is a RunsError."""
        run_id = run_id_of(run)
        try:
            item = self.dynamodb.get_item(
                TableName=self.name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": RUN_RECORD_SK}},
                ConsistentRead=True,
            ).get("Item")
        except ClientError as error:
            raise self._explained(error, None) from error
        if item is None:
            raise RunsError(f"no run {run_id} in table {self.name}")
        return deserialize(item)

    # ------------------------------------------------------------------------------------------------- lists
    def list(
        self,
        *,
        status: str | None = None,
        commit: str | None = None,
        trigger: str | None = None,
        since: str | None = None,
        limit: int = 20,
        token: str | None = None,
    ) -> Page:
        """Runs newest first, by commit (and status), by status, or all: one index each. The trigger kind is in no
        index's key: it filters the Query's items (DynamoDB applies a FilterExpression after reading them)."""
        if commit is not None:
            return self._query(
                INDEX_BY_COMMIT, commit, since=since, status=status, trigger=trigger, limit=limit, token=token
            )
        if status is not None:
            return self._query(INDEX_BY_STATUS, status, since=since, trigger=trigger, limit=limit, token=token)
        return self._query(INDEX_BY_TIME, RUN_RECORD_SK, since=since, trigger=trigger, limit=limit, token=token)

    def lineage(
        self,
        *,
        model_content_sha256: str | None = None,
        commit: str | None = None,
        data_ref: str | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page:
        """Every run that produced a model (by content digest), or used a commit, or a data version."""
        chosen = [
            (index, value)
            for index, value in (
                (INDEX_BY_MODEL, model_content_sha256),
                (INDEX_BY_COMMIT, commit),
                (INDEX_BY_DATA, data_ref),
            )
            if value is not None
        ]
        if len(chosen) != 1:
            raise RunsError("give exactly one of --model-sha256, --model-file, --commit and --data")
        index, value = chosen[0]
        return self._query(index, value, limit=limit, token=token)

    def find_rerun(self, commit: str, request_id: str, since: str) -> dict[str, Any] | None:
        """The record of the re-run a request started, once it exists (not the DUPLICATE record a redelivered
        request leaves beside it)."""
        page = self._query(INDEX_BY_COMMIT, commit, since=since, rerun_request_id=request_id, limit=50)
        return next((record for record in page.records if record.get("status") != "DUPLICATE"), None)

    # ------------------------------------------------------------------------------------------------- Query
    def _query(
        self,
        index: str,
        value: str,
        *,
        since: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        rerun_request_id: str | None = None,
        limit: int,
        token: str | None = None,
    ) -> Page:
        if not 1 <= limit <= MAX_LIMIT:
            raise RunsError(f"--limit must be between 1 and {MAX_LIMIT}, not {limit}")
        names = {"#key": INDEX_KEYS[index]}
        values: dict[str, Any] = {":key": {"S": value}}
        condition = "#key = :key"
        if since is not None:
            names["#started"] = SORT_KEY
            values[":since"] = {"S": since}
            condition += " AND #started >= :since"
        filters = []
        if status is not None:
            names["#status"] = "status"
            values[":status"] = {"S": status}
            filters.append("#status = :status")
        if trigger is not None:
            names["#trigger"] = "trigger_kind"
            values[":trigger"] = {"S": trigger}
            filters.append("#trigger = :trigger")
        if rerun_request_id is not None:
            names["#request"] = "rerun_request_id"
            values[":request"] = {"S": rerun_request_id}
            filters.append("#request = :request")
        request: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        start = _decode_token(token, index) if token else None
        records: list[dict[str, Any]] = []
        calls = 0
        while True:
            page_request = request | {"Limit": limit - len(records)}
            if start:
                page_request["ExclusiveStartKey"] = start
            try:
                response = self.dynamodb.query(**page_request)
            except ClientError as error:
                raise self._explained(error, index) from error
            calls += 1
            records += [deserialize(item) for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start or len(records) >= limit or calls >= MAX_CALLS_PER_PAGE:
                break
        return Page(records, _encode_token(index, start) if start else None, index, calls)

    def _explained(self, error: ClientError, index: str | None) -> Exception:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        # DynamoDB answers a missing index with ValidationException "The table does not have the specified index: X"
        # (as recorded in awslabs/aws-sdk-ios-samples#58 and aws-amplify/amplify-js#10989); moto with
        # ResourceNotFoundException "Invalid index". Either way the message names the index.
        if index is not None and code in {"ValidationException", "ResourceNotFoundException"} and "index" in message:
            return RunsError(
                f"table {self.name} has no index {index} yet: finish adding the runs table's indexes "
                "(docs/audit-record.md, 'Migration from schema 1')"
            )
        if code == "ResourceNotFoundException":
            return RunsError(f"table {self.name} does not exist (is the stack deployed in this region?)")
        return error
