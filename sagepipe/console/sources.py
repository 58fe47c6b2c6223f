"""Where the console reads runs from: a stack through boto3, or the runs a local command left on disk.

- `StackRuns`: a deployed stack, or the local one a running `sagepipe local up` serves (AWS_ENDPOINT_URL). The
  stack is found by its CloudFormation outputs and its runs table read through `RunsTable`, the same GetItem and
  Query calls `sagepipe runs` makes (never a Scan). Each run's execution (definition and history) comes from
  Step Functions; its build and training logs from the local state directory when the stack is the emulator's,
  from CloudWatch Logs otherwise. Everything is read-only.
- `StateDirRuns`: `.sagepipe/runs/<run-id>/` as `sagepipe local run` and `local replay` leave them (record.json,
  history.json, definition.json, build.log, training.log), with no emulator running. A directory is not a table:
  its filters are applied to the records read, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from sagepipe.runs.errors import RunsError
from sagepipe.runs.queries import RunsTable, run_id_of
from sagepipe.runs.records import links
from sagepipe.runs.stack import Stack, describe_stack

LOG_TAIL_LINES: Final = 200
LOG_TAIL_BYTES: Final = 256 * 1024
"""The tail read of a local log: enough for LOG_TAIL_LINES long lines, without reading a large log whole."""
HISTORY_PAGE: Final = 1000
"""GetExecutionHistory's maximum maxResults (botocore data/stepfunctions/2016-11-23/service-2.json, PageSize: max
1000; https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html)."""
HISTORY_PAGES_MAX: Final = 25
"""Standard workflows have at most 25,000 history events, kept 90 days after the execution ends (Step Functions
quotas, https://docs.aws.amazon.com/step-functions/latest/dg/limits.html): 25 pages of 1,000."""
TRAINING_LOG_GROUP: Final = "/aws/sagemaker/TrainingJobs"
"""SageMaker's log group for training jobs, one stream per instance whose name starts with the job's name
(<job>/algo-<n>-<epoch>; SageMaker developer guide, "Log groups and streams that SageMaker AI sends to CloudWatch
Logs", https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html)."""
LOG_KINDS: Final = ("build", "training")
_AWS_HOSTS: Final = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


class RunNotFoundError(RunsError):
    """The run is in neither the table nor the directory."""


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    commit: str | None = None
    trigger: str | None = None

    @property
    def any(self) -> bool:
        return any((self.status, self.commit, self.trigger))


@dataclass(frozen=True)
class RunsPage:
    records: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True)
class Execution:
    """A run's execution as Step Functions (or the run's directory) keeps it."""

    definition: dict[str, Any]
    history: list[dict[str, Any]]


@dataclass(frozen=True)
class LogTail:
    kind: str
    text: str
    """The last lines, as read (the caller redacts)."""
    where: str
    """Where the whole log is: a file path or a log group and stream."""
    truncated: bool
    local_file: Path | None = None
    """The whole log, for a local one: the console serves it."""
    console_url: str | None = None
    """The whole log in the AWS console, for a deployed one."""


class RunSource(Protocol):
    """What the console reads. Every method is a read."""

    @property
    def description(self) -> str: ...

    @property
    def deployed(self) -> bool:
        """True for a stack on AWS: the page links to the AWS consoles."""
        ...

    def list(self, filters: Filters, limit: int, token: str | None) -> RunsPage: ...

    def get(self, run_id: str) -> dict[str, Any]: ...

    def execution(self, record: Mapping[str, Any]) -> tuple[Execution | None, str | None]:
        """(The run's execution, None), or (None, why it cannot be shown)."""
        ...

    def log(self, record: Mapping[str, Any], kind: str) -> LogTail | None: ...

    def champion_package_arn(self) -> str | None:
        """The model package the stack's registry holds as the champion, None when there is none to know."""
        ...


# ------------------------------------------------------------------------------------------------ local files
def _safe_run_dir(runs_dir: Path, run_id: str) -> Path | None:
    """runs_dir/run_id, only when run_id is one path component (an execution name cannot hold a slash)."""
    if not run_id or run_id in {".", ".."} or "/" in run_id or "\\" in run_id or "\x00" in run_id:
        return None
    return runs_dir / run_id


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> tuple[str, bool]:
    """The last `lines` lines of a file, and whether there was more before them."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > LOG_TAIL_BYTES:
            handle.seek(size - LOG_TAIL_BYTES)
        data = handle.read(LOG_TAIL_BYTES)
    text = data.decode("utf-8", errors="replace")
    parts = text.splitlines()
    if size > LOG_TAIL_BYTES and parts:
        parts = parts[1:]  # the first line read is probably cut
    return "\n".join(parts[-lines:]), size > LOG_TAIL_BYTES or len(parts) > lines


def _local_log_candidates(state_dir: Path, record: Mapping[str, Any], kind: str) -> list[Path]:
    """Where `sagepipe local` keeps a run's log: the run's directory (after `local run` collected it), else the
    session's log of the job (sagepipe/local/sagemaker/adapter.py and codebuild/adapter.py name them)."""
    candidates: list[Path] = []
    run_dir = _safe_run_dir(state_dir / "runs", str(record.get("run_id", "")))
    if run_dir is not None:
        candidates.append(run_dir / f"{kind}.log")
    logs = state_dir / "session" / "logs"
    if kind == "training" and record.get("training_job_name"):
        job = str(record["training_job_name"])
        if "/" not in job:
            candidates.append(logs / "sagemaker" / f"{job}.log")
    if kind == "build" and record.get("image_build_id"):
        build = str(record["image_build_id"]).rsplit(":", 1)[-1]
        if "/" not in build:
            candidates.append(logs / "codebuild" / f"{build}.log")
    return candidates


def local_log(state_dir: Path | None, record: Mapping[str, Any], kind: str) -> LogTail | None:
    if state_dir is None:
        return None
    for path in _local_log_candidates(state_dir, record, kind):
        if path.is_file():
            text, truncated = _tail(path)
            return LogTail(kind, text, str(path), truncated, local_file=path)
    return None


# ------------------------------------------------------------------------------------------------ a stack
def is_aws_endpoint(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host.endswith(_AWS_HOSTS)


class StackRuns:
    """A stack's runs through boto3: `RunsTable` for records, Step Functions for executions, logs as above."""

    def __init__(self, session: Any, stack_name: str, *, state_dir: Path | None = None, config: Any = None) -> None:
        self._clients = {
            service: session.client(service, config=config)
            for service in ("cloudformation", "dynamodb", "stepfunctions", "logs", "codebuild", "sagemaker")
        }
        self.stack: Stack = describe_stack(self._clients["cloudformation"], stack_name)
        self.table = RunsTable(self._clients["dynamodb"], self.stack.runs_table)
        endpoint = str(self._clients["dynamodb"].meta.endpoint_url)
        self._deployed = is_aws_endpoint(endpoint)
        self._endpoint = endpoint
        # Local files are the emulator's logs; a deployed stack's are in CloudWatch Logs.
        self.state_dir = None if self._deployed else state_dir

    @property
    def description(self) -> str:
        where = self.stack.region if self._deployed else f"the emulator at {self._endpoint}"
        return f"stack {self.stack.name} ({where})"

    @property
    def deployed(self) -> bool:
        return self._deployed

    def list(self, filters: Filters, limit: int, token: str | None) -> RunsPage:
        page = self.table.list(
            status=filters.status, commit=filters.commit, trigger=filters.trigger, limit=limit, token=token
        )
        return RunsPage(page.records, page.next_token)

    def get(self, run_id: str) -> dict[str, Any]:
        try:
            return self.table.get(run_id)
        except RunsError as error:
            if str(error).startswith("no run "):
                raise RunNotFoundError(str(error)) from None
            raise

    def execution(self, record: Mapping[str, Any]) -> tuple[Execution | None, str | None]:
        arn = str(record.get("execution_arn") or "")
        if not arn:
            return None, "the record names no execution"
        sfn = self._clients["stepfunctions"]
        try:
            definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=arn)["definition"])
            events: list[dict[str, Any]] = []
            request: dict[str, Any] = {"executionArn": arn, "maxResults": HISTORY_PAGE}
            for _ in range(HISTORY_PAGES_MAX):
                page = sfn.get_execution_history(**request)
                events += page["events"]
                if not page.get("nextToken"):
                    break
                request["nextToken"] = page["nextToken"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ExecutionDoesNotExist":
                kept = StateDirRuns(self.state_dir).execution(record)[0] if self.state_dir else None
                if kept is not None:
                    return kept, None
                # Step Functions keeps a Standard execution's history 90 days after it ends (quotas page).
                return None, "Step Functions no longer has this execution (histories are kept 90 days after the end)"
            return None, f"Step Functions: {code or 'error'}"
        return Execution(definition, events), None

    def log(self, record: Mapping[str, Any], kind: str) -> LogTail | None:
        found = local_log(self.state_dir, record, kind)
        if found is not None or not self._deployed:
            return found
        try:
            return self._cloudwatch_log(record, kind)
        except ClientError:
            return None

    def _cloudwatch_log(self, record: Mapping[str, Any], kind: str) -> LogTail | None:
        """The tail of the build's stream (its group and stream from CodeBuild's BatchGetBuilds `logs`), or of the
        training job's first instance stream (<job>/algo-1-...)."""
        logs = self._clients["logs"]
        if kind == "build":
            build_id = record.get("image_build_id")
            if not build_id:
                return None
            builds = self._clients["codebuild"].batch_get_builds(ids=[str(build_id)]).get("builds", [])
            location = (builds[0].get("logs") or {}) if builds else {}
            group, stream = location.get("groupName"), location.get("streamName")
            console_url = location.get("deepLink") or links(record).get("build")
        else:
            job = record.get("training_job_name")
            if not job:
                return None
            group = TRAINING_LOG_GROUP
            streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/", limit=1)
            found = streams.get("logStreams", [])
            stream = found[0]["logStreamName"] if found else None
            console_url = links(record).get("training logs")
        if not group or not stream:
            return None
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=False, limit=LOG_TAIL_LINES
        ).get("events", [])
        text = "\n".join(str(event.get("message", "")).rstrip("\n") for event in events)
        return LogTail(kind, text, f"{group} {stream}", len(events) >= LOG_TAIL_LINES, console_url=console_url)

    # ------------------------------------------------------------------------------------------------ a directory
    def champion_package_arn(self) -> str | None:
        """The registry's champion (sagepipe models champion), or None: no registry in a stack that predates it,
        no approved version yet, or a role that may not list the group's packages (the page then marks none)."""
        from sagepipe.models.registry import Registry  # the registry's commands are not needed by other pages

        try:
            return Registry(self._clients["sagemaker"], self.stack).champion_arn()
        except (RunsError, ClientError):
            return None


class StateDirRuns:
    """The runs `sagepipe local` left in <state-dir>/runs/, read from their files."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"
        self._cache: dict[Path, tuple[int, dict[str, Any]]] = {}

    @property
    def description(self) -> str:
        return f"local runs in {self.runs_dir}"

    @property
    def deployed(self) -> bool:
        return False

    def _record(self, path: Path) -> dict[str, Any] | None:
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not record.get("run_id"):
            return None
        self._cache[path] = (stamp, record)
        return record

    def _all(self) -> list[dict[str, Any]]:
        if not self.runs_dir.is_dir():
            return []
        records = [record for path in self.runs_dir.glob("*/record.json") if (record := self._record(path))]
        return sorted(records, key=lambda record: str(record.get("started_at", "")), reverse=True)

    def list(self, filters: Filters, limit: int, token: str | None) -> RunsPage:
        def wanted(record: Mapping[str, Any]) -> bool:
            return (
                (filters.status is None or record.get("status") == filters.status)
                and (filters.commit is None or record.get("commit_id") == filters.commit)
                and (filters.trigger is None or record.get("trigger_kind") == filters.trigger)
            )

        try:
            start = int(token) if token else 0
        except ValueError:
            raise RunsError("this page token is not one the console gave") from None
        chosen = [record for record in self._all() if wanted(record)]
        page = chosen[start : start + limit]
        more = start + limit < len(chosen)
        return RunsPage(page, str(start + limit) if more else None)

    def get(self, run_id: str) -> dict[str, Any]:
        run_dir = _safe_run_dir(self.runs_dir, run_id_of(run_id))
        record = self._record(run_dir / "record.json") if run_dir is not None else None
        if record is None:
            raise RunNotFoundError(f"no run {run_id} in {self.runs_dir}")
        return record

    def execution(self, record: Mapping[str, Any]) -> tuple[Execution | None, str | None]:
        run_dir = _safe_run_dir(self.runs_dir, str(record.get("run_id", "")))
        if run_dir is None or not (run_dir / "history.json").is_file():
            return None, "no history.json in the run's directory"
        try:
            history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
            definition = json.loads(self._definition_text(run_dir))
        except (OSError, ValueError) as error:
            return None, f"the run's files cannot be read: {error}"
        return Execution(definition, history), None

    @staticmethod
    def _definition_text(run_dir: Path) -> str:
        # Runs collected before definition.json was written: the project's state machine file draws the same
        # states (substitutions only change Arguments, never a state or a transition).
        kept = run_dir / "definition.json"
        if kept.is_file():
            return kept.read_text(encoding="utf-8")
        from sagepipe.template import PROJECT_ROOT

        return (PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8")

    def log(self, record: Mapping[str, Any], kind: str) -> LogTail | None:
        return local_log(self.state_dir, record, kind)

    def champion_package_arn(self) -> str | None:
        """None: a state directory keeps runs, not the registry (that lives in the stack: use --stack)."""
        return None
