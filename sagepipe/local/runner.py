"""Drive the local stack the way users drive the deployed one: push code, upload data, follow executions.

Everything goes through the real event path: a code push is an EventBridge event (the CodeCommit shape),
data is an S3 PutObject whose EventBridge event the data rule matches, and the execution is the one that
rule started. Nothing calls the state machine directly.

The pipeline is driven through the emulator's AWS endpoint, so it works the same on an emulator this process
runs (`LocalPipeline.running`) and on one a `sagepipe local up` runs (`LocalPipeline.attached`): the execution
a trigger started is found among the state machine's executions by the event in its input (a `Trigger`), and
the jobs' logs are read from the emulator's state directory on this machine.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote_plus

from boto3.dynamodb.types import TypeDeserializer

from sagepipe.local.codebuild.logs import build_log
from sagepipe.local.core import context
from sagepipe.local.core.emulator import ACCOUNT_ID, REGION, Emulator, EmulatorEndpoint
from sagepipe.local.git import git
from sagepipe.local.process import poll_until
from sagepipe.local.provisioner import LocalStack, described, provision
from sagepipe.local.sagemaker.logs import training_log
from sagepipe.local.services import start_emulator
from sagepipe.local.session import LocalUp
from sagepipe.template import PROJECT_ROOT

POLL_SECONDS: Final = 0.05
PROGRESS_POLL_SECONDS: Final = 0.25
"""How often `follow` reads the history to report progress."""
IDLE_CHECK_SECONDS: Final = 0.25
"""`wait_until_idle` lists the running executions at most this often (under a storm, hundreds end each second)."""
END_RECHECK_SECONDS: Final = 1.0
"""With the emulator in this process, waits on an execution's end wake when one ends; they also look again at
this pace, in case an end comes some other way. (An emulator in another process is polled every POLL_SECONDS.)"""
PUT_EVENTS_BATCH: Final = 10
"""PutEvents takes at most 10 entries."""
DEFAULT_RUN_TIMEOUT_SECONDS: Final = 900.0
START_TIMEOUT_SECONDS: Final = 10.0
"""EventBridge delivers locally during PutEvents (and S3 during PutObject): an execution a trigger starts exists
when the call returns. The wait only covers a slow machine."""
CLOCK_SKEW: Final = timedelta(seconds=60)
"""Executions are scanned newest first back to this long before the trigger was sent (same machine, one clock;
the margin only keeps the scan bounded)."""
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class RunError(RuntimeError):
    """A local run could not be started or followed."""


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Progress:
    """One line of progress: a state entered, left, retried or failed."""

    state: str
    kind: str  # entered | succeeded | failed | retrying | execution
    seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Trigger:
    """A trigger that was sent, and how to recognise the execution it started: by the EventBridge event the
    rule passed as the execution's input. `since` is when it was sent (executions started before are not
    looked at)."""

    description: str
    since: datetime
    matches: Callable[[Mapping[str, Any]], bool]

    @classmethod
    def event(cls, event_id: str, since: datetime, description: str) -> Trigger:
        """The execution a PutEvents entry started: its input is the event, whose `id` is the EventId PutEvents
        returned (EventBridge targets get the event as is unless the target transforms it; the pipeline's
        rules do not)."""
        return cls(description, since, lambda event: event.get("id") == event_id)

    @classmethod
    def s3_object(cls, bucket: str, key: str, version_id: str, since: datetime, description: str) -> Trigger:
        """The execution an object upload started: its input is S3's "Object Created" event for that version
        (the key is URL-encoded in S3's events)."""

        def matches(event: Mapping[str, Any]) -> bool:
            detail = event.get("detail") or {}
            found = detail.get("object") or {}
            return (
                event.get("source") == "aws.s3"
                and (detail.get("bucket") or {}).get("name") == bucket
                and found.get("version-id") == version_id
                and unquote_plus(str(found.get("key", ""))) == key
            )

        return cls(description, since, matches)


def now() -> datetime:
    return datetime.now(UTC)


def listed_by(execution: Mapping[str, Any]) -> datetime:
    """The time ListExecutions sorts an execution by, newest first: "Running executions are sorted by their
    startDate or redriveDate, and other executions are sorted by their stopDate" (botocore's service model of
    states:ListExecutions). An execution a trigger started is listed no later than that trigger was sent."""
    if execution.get("status") != "RUNNING" and execution.get("stopDate"):
        return execution["stopDate"]  # type: ignore[no-any-return]
    return execution.get("redriveDate") or execution["startDate"]  # type: ignore[no-any-return]


@dataclass
class RunResult:
    execution_arn: str
    status: str
    record: dict[str, Any] | None
    history: list[dict[str, Any]]
    output: Any
    error: str | None
    cause: str | None
    seconds: float
    run_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.execution_arn.rsplit(":", 1)[-1]


def _describe_event(event: Mapping[str, Any], previous: Mapping[int, Mapping[str, Any]]) -> Progress | None:
    kind = event["type"]
    if kind.endswith("StateEntered"):
        return Progress(event["stateEnteredEventDetails"]["name"], "entered")
    if kind.endswith("StateExited"):
        return Progress(event["stateExitedEventDetails"]["name"], "exited")
    if kind in {"TaskFailed", "TaskTimedOut", "EvaluationFailed", "LambdaFunctionFailed"}:
        details: dict[str, Any] = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
        return Progress("", "failed", detail=str(details.get("error", kind)))
    if kind in {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}:
        return Progress("", "execution", detail=kind.removeprefix("Execution").upper())
    return None


class LocalPipeline:
    """The stack in an emulator (this process's, or a `sagepipe local up`'s), and the local git repository its
    builds check out."""

    def __init__(self, emulator: EmulatorEndpoint, stack: LocalStack, repository: Path, runs_dir: Path) -> None:
        self.emulator = emulator
        self.stack = stack
        self.repository = repository
        self.runs_dir = runs_dir

    @classmethod
    @contextmanager
    def running(
        cls,
        state_dir: Path,
        *,
        repository: Path = PROJECT_ROOT,
        parameters: Mapping[str, str] | None = None,
        runs_dir: Path | None = None,
        port: int | None = None,
    ) -> Iterator[LocalPipeline]:
        """An emulator of this process's own, the stack provisioned in it; both end with the block."""
        session = state_dir / "session"
        shutil.rmtree(session, ignore_errors=True)
        emulator = start_emulator(session, port=port)
        try:
            stack = provision(emulator, parameters=parameters, repository=repository)
            yield cls(emulator, stack, repository, runs_dir or state_dir / "runs")
        finally:
            emulator.stop()

    @classmethod
    def attached(cls, up: LocalUp, *, runs_dir: Path) -> LocalPipeline:
        """The stack a running `sagepipe local up` serves, driven through its endpoint."""
        emulator = up.emulator
        stack = described(emulator.client("cloudformation"), up.stack)
        return cls(emulator, stack, Path(up.repository), runs_dir)

    # ------------------------------------------------------------------ triggers
    @property
    def data_bucket(self) -> str:
        return str(self.stack.outputs["DataBucketName"])

    @property
    def data_prefix(self) -> str:
        return str(self.stack.parameters["DataPrefix"])

    def push_commit(self, commit: str) -> str:
        """A CodeCommit push of `commit` to the configured branch, as EventBridge delivers it. Returns the event id."""
        repository = self.stack.parameters["CodeRepositoryName"]
        branch = self.stack.parameters["CodeBranch"]
        who = git(self.repository, "config", "--default", "local-user", "user.email")
        detail = {
            "callerUserArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{who}",
            "commitId": commit,
            "event": "referenceUpdated",
            "referenceFullName": f"refs/heads/{branch}",
            "referenceName": branch,
            "referenceType": "branch",
            "repositoryId": "00000000-0000-0000-0000-000000000000",
            "repositoryName": repository,
        }
        return self.put_event(
            "aws.codecommit",
            "CodeCommit Repository State Change",
            detail,
            resources=[f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{repository}"],
        )

    def put_event(
        self, source: str, detail_type: str, detail: Mapping[str, Any], resources: list[str] | None = None
    ) -> str:
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "Resources": resources or [],
        }
        response = self.emulator.client("events").put_events(Entries=[entry])["Entries"][0]
        if "EventId" not in response:
            raise RunError(f"EventBridge refused the event: {response}")
        return str(response["EventId"])

    def pushed(self, commit: str) -> Trigger:
        """Push `commit` (push_commit); the trigger finds the execution it started."""
        since = now()
        return Trigger.event(self.push_commit(commit), since, f"code push {commit[:12]}")

    def uploaded(self, path: Path, key: str | None = None) -> Trigger:
        """Upload `path` (upload_data); the trigger finds the execution it started."""
        since = now()
        key, version = self.upload_data(path, key)
        return Trigger.s3_object(
            self.data_bucket, key, version, since, f"data upload s3://{self.data_bucket}/{key} ({version})"
        )

    def upload_data(self, path: Path, key: str | None = None) -> tuple[str, str]:
        """PutObject into the data bucket (the data rule starts the run). Returns the key and its version id."""
        key = key or f"{self.data_prefix}{path.name}"
        with path.open("rb") as body:
            response = self.emulator.client("s3").put_object(Bucket=self.data_bucket, Key=key, Body=body)
        return key, str(response.get("VersionId"))

    def redeliver(self, event: Mapping[str, Any], times: int) -> None:
        """Put an EventBridge event again `times` times, as an at-least-once delivery may (the id differs;
        what the event says does not)."""
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": list(event.get("resources", [])),
        }
        events = self.emulator.client("events")
        remaining = times
        while remaining > 0:
            batch = min(PUT_EVENTS_BATCH, remaining)
            response = events.put_events(Entries=[entry] * batch)
            if response["FailedEntryCount"]:
                raise RunError(f"EventBridge refused {response['FailedEntryCount']} of {batch} events: {response}")
            remaining -= batch

    # ------------------------------------------------------------------ following
    def execution_marker(self) -> int:
        """How many executions rules have started so far (an emulator in this process only: tests)."""
        return context.current().execution_count()

    def started_since(self, marker: int, count: int = 1, timeout: float = START_TIMEOUT_SECONDS) -> list[str]:
        """The executions rules started after `marker` (an emulator in this process only: tests)."""
        started = context.current().wait_for_executions(marker, count, timeout)
        if len(started) < count:
            raise RunError(f"expected {count} execution(s) to start within {timeout:.0f} s, saw {len(started)}")
        return [item.execution_arn for item in started]

    def started_by(self, trigger: Trigger, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """The execution `trigger` started, found through Step Functions' API: ListExecutions (newest first) back
        to when the trigger was sent, and each new one's input (DescribeExecution) matched against it."""
        sfn = self.emulator.client("stepfunctions")
        machine = self.stack.outputs["PipelineStateMachineArn"]
        oldest = trigger.since - CLOCK_SKEW
        looked_at: set[str] = set()
        found: list[str] = []

        def look() -> bool:
            kwargs: dict[str, Any] = {"stateMachineArn": machine, "maxResults": 100}
            while True:
                page = sfn.list_executions(**kwargs)
                for execution in page["executions"]:
                    if listed_by(execution) < oldest:
                        return False  # every execution listed after this one is older still
                    arn = execution["executionArn"]
                    if arn in looked_at or execution["startDate"] < oldest:
                        continue
                    looked_at.add(arn)
                    started_with = sfn.describe_execution(executionArn=arn).get("input") or "{}"
                    if trigger.matches(json.loads(started_with)):
                        found.append(arn)
                        return True
                if not page.get("nextToken"):
                    return False
                kwargs["nextToken"] = page["nextToken"]

        if not poll_until(look, timeout=timeout, interval=POLL_SECONDS):
            raise RunError(
                f"{trigger.description} started no execution within {timeout:.0f} s "
                "(a target that cannot start goes to the trigger dead-letter queue)"
            )
        return found[0]

    def follow(
        self,
        execution_arn: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float = DEFAULT_RUN_TIMEOUT_SECONDS,
    ) -> RunResult:
        """Wait for the execution to end, reporting each state as it runs. Every wait is bounded by `timeout`."""
        sfn = self.emulator.client("stepfunctions")
        started = time.monotonic()
        seen = 0
        entered: dict[str, float] = {}
        description: dict[str, Any] = {}
        history: list[dict[str, Any]] = []

        next_history = 0.0

        def report_progress() -> None:
            nonlocal seen, history, next_history
            history = self._history(sfn, execution_arn)
            next_history = time.monotonic() + PROGRESS_POLL_SECONDS
            for event in history[seen:]:
                progress = _describe_event(event, {})
                if progress is None or on_progress is None:
                    continue
                stamp = event["timestamp"].timestamp() if hasattr(event["timestamp"], "timestamp") else time.time()
                if progress.kind == "entered":
                    entered[progress.state] = stamp
                    on_progress(progress)
                elif progress.kind == "exited":
                    took = stamp - entered.get(progress.state, stamp)
                    on_progress(Progress(progress.state, "succeeded", round(took, 3)))
                else:
                    on_progress(progress)
            seen = len(history)

        def ended() -> bool:
            nonlocal description
            # The status alone is cheap; the history (every event, serialised by moto) is read for progress at a
            # slower pace, and once at the end.
            description = sfn.describe_execution(executionArn=execution_arn)
            done = description["status"] in TERMINAL
            if on_progress is not None and (done or time.monotonic() >= next_history):
                report_progress()
            return done

        recheck = PROGRESS_POLL_SECONDS if on_progress is not None else END_RECHECK_SECONDS
        if not self._until_an_execution_ends(ended, timeout=timeout, recheck=recheck):
            raise RunError(f"{execution_arn} did not finish within {timeout:.0f} s")
        if on_progress is None:
            history = self._history(sfn, execution_arn)
        output = json.loads(description["output"]) if description.get("output") else None
        return RunResult(
            execution_arn=execution_arn,
            status=description["status"],
            record=self.record(execution_arn),
            history=history,
            output=output,
            error=description.get("error"),
            cause=description.get("cause"),
            seconds=round(time.monotonic() - started, 3),
        )

    def wait_until_idle(self, timeout: float) -> None:
        """Wait until no execution of the pipeline is running. Raises RunError after `timeout` seconds."""
        sfn = self.emulator.client("stepfunctions")
        machine = self.stack.outputs["PipelineStateMachineArn"]

        def idle() -> bool:
            running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)
            return not running["executions"]

        if not self._until_an_execution_ends(
            idle, timeout=timeout, recheck=END_RECHECK_SECONDS, at_most_every=IDLE_CHECK_SECONDS
        ):
            raise RunError(f"executions were still running after {timeout:.0f} s")

    def _until_an_execution_ends(
        self, condition: Callable[[], object], *, timeout: float, recheck: float, at_most_every: float = 0.0
    ) -> bool:
        """Check `condition` each time an execution ends, until it holds or `timeout` passes (True if it held)."""
        runtime = context.current_or_none()
        if runtime is None or not isinstance(self.emulator, Emulator):
            return poll_until(condition, timeout=timeout, interval=max(POLL_SECONDS, at_most_every))
        return runtime.wait_for_execution_ends(condition, timeout=timeout, recheck=recheck, at_most_every=at_most_every)

    @staticmethod
    def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        for _ in range(100):
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return sorted(events, key=lambda event: int(event["id"]))

    def record(self, execution_arn: str) -> dict[str, Any] | None:
        """The run's audit record (pk RUN#<execution name>), as plain JSON, or None if it has none."""
        run_id = execution_arn.rsplit(":", 1)[-1]
        item = (
            self.emulator.client("dynamodb")
            .get_item(
                TableName=self.stack.outputs["RunsTableName"],
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RECORD"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        if item is None:
            return None
        deserializer = TypeDeserializer()
        record: dict[str, Any] = plain({name: deserializer.deserialize(value) for name, value in sorted(item.items())})
        return record

    # ------------------------------------------------------------------ what a run leaves behind
    def collect(self, result: RunResult) -> RunResult:
        """Write .sagepipe/runs/<run-id>/: record, history, logs, model and the execution graph."""
        from sagepipe.local.graph import render

        run_dir = self.runs_dir / result.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}

        def write(name: str, value: Any) -> None:
            path = run_dir / name
            path.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
            files[name] = path

        write("record.json", result.record)
        write("history.json", result.history)
        # The jobs ran in the emulator's process (this one, or a `local up`'s) and left their logs there.
        logs_dir = self.emulator.state_dir / "logs"
        record = result.record or {}
        job = record.get("training_job_name")
        if job and training_log(logs_dir, job).exists():
            files["training.log"] = Path(shutil.copyfile(training_log(logs_dir, job), run_dir / "training.log"))
        for build_id in self._build_ids(result.history):
            if build_log(logs_dir, build_id).exists():
                files["build.log"] = Path(shutil.copyfile(build_log(logs_dir, build_id), run_dir / "build.log"))
        artifact = record.get("artifact_uri")
        if artifact:
            bucket, _, key = artifact.removeprefix("s3://").partition("/")
            self.emulator.client("s3").download_file(bucket, key, str(run_dir / "model.tar.gz"))
            files["model.tar.gz"] = run_dir / "model.tar.gz"
        definition = json.loads(
            self.emulator.client("stepfunctions").describe_state_machine(
                stateMachineArn=self.stack.outputs["PipelineStateMachineArn"]
            )["definition"]
        )
        # The definition the run's graph is drawn over, kept so that `sagepipe console --local` can draw it again.
        write("definition.json", definition)
        rendered = render(definition, result.history, run_dir, title=f"sagepipe run {result.run_id}")
        files["graph.dot"] = rendered.dot_path
        if rendered.svg_path is not None:
            files["graph.svg"] = rendered.svg_path
        if rendered.problem:
            result.notes.append(f"graph.svg not drawn: {rendered.problem}")
        result.run_dir = run_dir
        result.files = files
        return result

    @staticmethod
    def _build_ids(history: list[dict[str, Any]]) -> Iterator[str]:
        for event in history:
            if event["type"] in {"TaskSubmitted", "TaskSucceeded"}:
                details = event.get("taskSubmittedEventDetails") or event.get("taskSucceededEventDetails") or {}
                if details.get("resourceType") == "codebuild":
                    build = json.loads(details.get("output", "{}")).get("Build", {})
                    if "Id" in build:
                        yield str(build["Id"])
