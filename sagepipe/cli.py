"""The `sagepipe` command line."""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from sagepipe import __version__

if TYPE_CHECKING:
    from sagepipe.local.runner import LocalPipeline, Progress, RunResult, Trigger
    from sagepipe.runs.queries import RunsTable
    from sagepipe.runs.stack import Stack

EXIT_RUN_NOT_SUCCEEDED = 1
EXIT_USAGE = 2
EXIT_DOCTOR_PROBLEM = 3
EXIT_NO_PROJECT = 5
EXIT_NO_RULE_MATCHES = 6
EXIT_STACK_REFUSED = 7
"""`sagepipe local replay`: no rule of the pipeline matches the event (or the webhook ignored the delivery)."""

RECORD_FIELDS = (
    ("status", "status"),
    ("run", "run_id"),
    ("trigger", "trigger_kind"),
    ("triggered by", "triggered_by"),
    ("commit", "commit_id"),
    ("data", "data_ref"),
    ("image", "image_uri"),
    ("image digest", "image_digest"),
    ("image built", "image_built"),
    ("training job", "training_job_name"),
    ("metrics", "metrics"),
    ("model", "artifact_uri"),
    ("model sha256", "artifact_sha256"),
    ("model content", "model_content_sha256"),
    ("timings", "timings"),
    ("failed stage", "failed_stage"),
    ("error", "error"),
    ("reason", "failure_reason"),
    ("skipped because", "skip_reason"),
    ("duplicate of", "duplicate_of"),
    ("rerun of", "rerun_of"),
    ("ledger", "ledger_uri"),
)


def _parameters(values: tuple[str, ...]) -> dict[str, str]:
    parameters = {}
    for value in values:
        name, separator, setting = value.partition("=")
        if not separator or not name:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--param")
        parameters[name] = setting
    return parameters


class Reporter:
    """Progress on stderr (a stream fixed when the command starts: in-process Lambda handlers swap
    sys.stderr while they run), results on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.err: IO[str] = click.get_text_stream("stderr")
        self.out: IO[str] = click.get_text_stream("stdout")
        self.color = self.err.isatty()

    def say(self, message: str = "", **style: Any) -> None:
        click.echo(click.style(message, **style) if self.color and style else message, file=self.err)

    def progress(self, item: Progress) -> None:
        if item.kind == "succeeded":
            self.say(f"  ✓ {item.state:<22} {item.seconds:6.2f} s")
        elif item.kind == "failed":
            # A failure is not the end: a Retry or a Catch may take it (FindImage's ImageNotFound is the
            # normal way into BuildImage). The next lines show where the run went.
            self.say(f"  ! {item.detail}", fg="yellow")
        elif item.kind == "execution":
            self.say(f"  = {item.detail}", bold=True)

    def record(self, result: RunResult) -> None:
        if self.as_json:
            click.echo(
                json.dumps(
                    result.record or {"status": result.status, "execution_arn": result.execution_arn},
                    indent=2,
                    default=str,
                ),
                file=self.out,
            )
            return
        record = result.record or {}
        self.say()
        self.say("run record", bold=True)
        for label, key in RECORD_FIELDS:
            if key in record:
                value = record[key]
                shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
                self.say(f"  {label:<16} {shown}")
        if result.run_dir is not None:
            self.say(f"  {'files':<16} {result.run_dir}/ ({', '.join(sorted(result.files))})")
        for note in result.notes:
            self.say(f"  note: {note}", fg="yellow")


@click.group()
@click.version_option(__version__, prog_name="sagepipe")
def main() -> None:
    """sagepipe: run and operate the SageMaker training pipeline."""


# ------------------------------------------------------------------------------------------ local
def _require_project() -> None:
    """The local commands and the developer tooling read the project's template: say so in one line without it."""
    from sagepipe.template import ProjectNotFoundError, require_project

    try:
        require_project()
    except ProjectNotFoundError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_NO_PROJECT)


@main.group()
def local() -> None:
    """Run the pipeline on the embedded AWS emulator: no AWS account, no Docker.

    `local run` and `local replay` use the running `sagepipe local up` of their state directory when there is
    one (their runs accumulate in it, and `sagepipe runs` lists them); otherwise they start an emulator of
    their own, whose runs end with the command.
    """
    _require_project()


_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".sagepipe"),
    show_default=True,
    help="Where runs, images and logs are kept (and where `local up` announces itself).",
)
_PARAM = click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a template parameter.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on stdout.")
_TIMEOUT = click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds to wait for a run.")


class _LocalUsageError(Exception):
    """A local command cannot do what it was asked in this state directory (exit 2)."""


@contextmanager
def _local_errors(reporter: Reporter) -> Iterator[None]:
    """A local command's failure is one line on stderr and an exit code, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sagepipe.local.core.provisioning import ProvisionError
    from sagepipe.local.replay import ReplayInputError
    from sagepipe.local.runner import RunError
    from sagepipe.local.session import SessionConflict
    from sagepipe.template import TemplateError

    try:
        yield
    except (_LocalUsageError, ReplayInputError, SessionConflict) as error:
        reporter.say(f"error: {error}", fg="red")
        sys.exit(EXIT_USAGE)
    except RunError as error:
        reporter.say(f"error: {error}", fg="red")
        sys.exit(EXIT_RUN_NOT_SUCCEEDED)
    except (ProvisionError, TemplateError) as error:
        # What `sam deploy` would refuse (a parameter's constraint, the training settings check): nothing runs.
        reporter.say(f"error: the stack was not created: {error}", fg="red")
        sys.exit(EXIT_STACK_REFUSED)
    except (BotoCoreError, ClientError) as error:
        # Typically a `local up` that stopped while this command used it.
        reporter.say(f"error: the emulator did not answer as expected: {error}", fg="red")
        sys.exit(EXIT_RUN_NOT_SUCCEEDED)


@contextmanager
def _own_pipeline(
    reporter: Reporter, state_dir: Path, parameters: dict[str, str], port: int | None = None
) -> Iterator[LocalPipeline]:
    """An emulator of this process, the stack provisioned in it; both end with the block."""
    from sagepipe.local.runner import LocalPipeline

    started = time.monotonic()
    with LocalPipeline.running(state_dir, parameters=parameters, port=port) as pipeline:
        reporter.say(
            f"emulator   {pipeline.emulator.endpoint} (moto), stack {pipeline.stack.name} "
            f"provisioned in {time.monotonic() - started:.1f} s"
        )
        yield pipeline


def _check_parameters(pipeline: LocalPipeline, parameters: dict[str, str], pid: int) -> None:
    """--param against a running `local up`: its stack was provisioned when it started, and stays as it is."""
    differs = {name: value for name, value in parameters.items() if pipeline.stack.parameters.get(name) != value}
    if differs:
        name, value = next(iter(differs.items()))
        raise _LocalUsageError(
            f"--param {name}={value}: the running `sagepipe local up` (pid {pid}) has "
            f"{name}={pipeline.stack.parameters.get(name)!r}, fixed when it started; drop --param, or stop it and "
            f"run `sagepipe local up --param {name}={value}`"
        )


@contextmanager
def _local_pipeline(reporter: Reporter, state_dir: Path, params: tuple[str, ...]) -> Iterator[LocalPipeline]:
    """The running `local up` of this state directory, driven as a client; else an emulator of this command's
    own. The first line says which."""
    from sagepipe.local.runner import LocalPipeline
    from sagepipe.local.session import discover
    from sagepipe.template import PROJECT_ROOT

    parameters = _parameters(params)
    found = discover(state_dir, PROJECT_ROOT)
    if found.live is not None:
        up = found.live
        reporter.say(
            f"emulator   {up.endpoint}: the running `sagepipe local up` (pid {up.pid}), stack {up.stack}; "
            "this run stays there with the others (`sagepipe runs list`)"
        )
        pipeline = LocalPipeline.attached(up, runs_dir=state_dir / "runs")
        _check_parameters(pipeline, parameters, up.pid)
        yield pipeline
        return
    reporter.say(
        "emulator   one of this command's own: its runs end with it "
        "(to keep them, start `sagepipe local up` in another terminal first)"
    )
    if found.ignored:
        reporter.say(f"note       ignored a stale discovery file: {found.ignored}", fg="yellow")
    with _own_pipeline(reporter, state_dir, parameters) as pipeline:
        yield pipeline


def _follow(
    pipeline: LocalPipeline, reporter: Reporter, trigger: Trigger, timeout: float, label: str = ""
) -> RunResult:
    execution_arn = pipeline.started_by(trigger)
    reporter.say()
    reporter.say(f"{label or trigger.description} → execution {execution_arn.rsplit(':', 1)[-1]}", bold=True)
    return pipeline.follow(execution_arn, on_progress=reporter.progress, timeout=timeout)


@local.command("run")
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Training data CSV (default: generated from scikit-learn's breast cancer dataset).",
)
@click.option(
    "--working-tree", is_flag=True, help="Build the working tree (uncommitted changes included) instead of HEAD."
)
@_JSON
@_PARAM
@_STATE_DIR
@_TIMEOUT
def local_run(  # noqa: PLR0917 - click passes the options by name
    data_file: Path | None, working_tree: bool, as_json: bool, params: tuple[str, ...], state_dir: Path, timeout: float
) -> None:
    """Run the pipeline end to end: push HEAD, upload training data, follow the run, print its record.

    Uses the running `sagepipe local up` of --state-dir when there is one, else an emulator of its own.
    Exits 0 when the run succeeded, 1 when it did not, 2 for bad usage.
    """
    from sagepipe.local.git import git, snapshot_working_tree, uncommitted_changes
    from sagepipe.local.sample_data import write_breast_cancer_csv
    from sagepipe.template import PROJECT_ROOT

    reporter = Reporter(as_json)
    repository = PROJECT_ROOT
    with _local_errors(reporter), _local_pipeline(reporter, state_dir, params) as pipeline:
        dirty = uncommitted_changes(repository)
        if working_tree:
            commit = snapshot_working_tree(repository)
            reporter.say(f"commit     {commit[:12]} (snapshot of the working tree on top of HEAD)")
        else:
            commit = git(repository, "rev-parse", "HEAD")
            reporter.say(f"commit     {commit[:12]} (HEAD)")
            if dirty:
                reporter.say(
                    f"note       {len(dirty)} uncommitted change(s) under container/ or in buildspec.yml are NOT in "
                    f"this run ({', '.join(dirty[:3])}{', ...' if len(dirty) > 3 else ''}); "
                    "pass --working-tree to build them",
                    fg="yellow",
                )
        data = data_file or write_breast_cancer_csv(state_dir / "data" / "breast-cancer.csv")
        first = pipeline.collect(_follow(pipeline, reporter, pipeline.pushed(commit), timeout))
        if first.status != "SUCCEEDED":
            reporter.record(first)
            sys.exit(EXIT_RUN_NOT_SUCCEEDED)
        result = _follow(pipeline, reporter, pipeline.uploaded(data), timeout)
        reporter.record(pipeline.collect(result))
    ok = result.status == "SUCCEEDED" and run_has_a_good_model(result.record or {})
    sys.exit(0 if ok else EXIT_RUN_NOT_SUCCEEDED)


def run_has_a_good_model(record: dict[str, Any]) -> bool:
    """Whether a run ended with a model the gate let through: SUCCEEDED, or CACHED with a gate that passed (a
    CACHED record from before cached runs went through the gate has none, and its source had SUCCEEDED)."""
    status = record.get("status")
    gate = record.get("gate")
    return status == "SUCCEEDED" or (status == "CACHED" and (not isinstance(gate, dict) or gate.get("passed") is True))


@local.command("replay")
@click.argument("event_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--as-is", is_flag=True, help="Send the event unchanged (by default it is adapted to the local stack).")
@_JSON
@_PARAM
@_STATE_DIR
@_TIMEOUT
def local_replay(  # noqa: PLR0917 - click passes the options by name
    event_file: Path, as_is: bool, as_json: bool, params: tuple[str, ...], state_dir: Path, timeout: float
) -> None:
    """Put a sample event (events/*.json) on the local bus, or deliver a GitHub webhook delivery, and follow
    the execution it starts.

    An EventBridge event that no rule of the pipeline matches is not sent: each rule is listed with the first
    field where the event differs, and the command exits 6. So does a delivery the webhook ignores. A ping
    delivery is answered and exits 0. Exits 0 when the run succeeded, 1 when it did not, 2 for bad input.
    """
    from sagepipe.local.replay import NoRuleMatches, NothingToRun, load_event, replay

    reporter = Reporter(as_json)
    with _local_errors(reporter):
        event = load_event(event_file)
        with _local_pipeline(reporter, state_dir, params) as pipeline:
            try:
                replayed = replay(pipeline, event, adapt_event=not as_is)
            except NoRuleMatches as no_match:
                for note in no_match.notes:
                    reporter.say(f"replay     {note}")
                for line in no_match.lines():
                    reporter.say(line)
                if as_json:
                    click.echo(json.dumps(no_match.as_json(), indent=2), file=reporter.out)
                sys.exit(EXIT_NO_RULE_MATCHES)
            except NothingToRun as ignored:
                for note in ignored.notes:
                    reporter.say(f"replay     {note}")
                reporter.say(f"{ignored}: nothing to run")
                if as_json:
                    click.echo(json.dumps({"status": "NOT_RUN", "reason": str(ignored)}, indent=2), file=reporter.out)
                sys.exit(EXIT_NO_RULE_MATCHES)
            for note in replayed.notes:
                reporter.say(f"replay     {note}")
            if replayed.trigger is None:
                reporter.say("replay     answered; nothing to run")
                if as_json:
                    click.echo(json.dumps({"status": "NOT_RUN", "notes": replayed.notes}, indent=2), file=reporter.out)
                sys.exit(0)
            result = _follow(pipeline, reporter, replayed.trigger, timeout, f"replay {event_file.name}")
            reporter.record(pipeline.collect(result))
    sys.exit(0 if result.status == "SUCCEEDED" else EXIT_RUN_NOT_SUCCEEDED)


@local.command("up")
@click.option(
    "--port", type=int, default=4566, show_default=True, help="Port for the emulator's endpoint (0: any free port)."
)
@_PARAM
@_STATE_DIR
def local_up(port: int, params: tuple[str, ...], state_dir: Path) -> None:
    """Keep the emulator running with the stack provisioned, for boto3, the AWS CLI, `sagepipe runs` and
    `sagepipe run`. `local run` and `local replay` with the same --state-dir use it while it runs."""
    from sagepipe.local import session
    from sagepipe.template import PROJECT_ROOT

    reporter = Reporter(as_json=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _local_errors(reporter):
        found = session.discover(state_dir, PROJECT_ROOT)
        if found.live is not None:
            raise _LocalUsageError(
                f"a `sagepipe local up` already serves {state_dir} at {found.live.endpoint} (pid {found.live.pid}): "
                "use it, or stop it first"
            )
        if found.ignored:
            reporter.say(f"note       replacing a stale discovery file: {found.ignored}", fg="yellow")
        with _own_pipeline(reporter, state_dir, _parameters(params), port) as pipeline:
            session_dir = pipeline.emulator.state_dir
            session.write(
                session_dir, endpoint=pipeline.emulator.endpoint, stack=pipeline.stack.name, repository=PROJECT_ROOT
            )
            try:
                _announce(reporter, pipeline, session.discovery_path(state_dir))
                # Each wait is bounded; the loop ends on Ctrl-C (KeyboardInterrupt) or SIGTERM.
                while not stop.wait(timeout=60):
                    pass
            except KeyboardInterrupt:
                reporter.say("stopping")
            finally:
                session.remove(session_dir)


def _announce(reporter: Reporter, pipeline: LocalPipeline, discovery: Path) -> None:
    environment = pipeline.emulator.client_environment() | {"SAGEPIPE_STACK": pipeline.stack.name}
    reporter.say()
    reporter.say("Point boto3, the AWS CLI or sagepipe at it:", bold=True)
    for name, value in environment.items():
        reporter.say(f"  export {name}={value}")
    reporter.say()
    reporter.say("Stack outputs:", bold=True)
    for name, value in pipeline.stack.outputs.items():
        reporter.say(f"  {name:<28} {value}")
    reporter.say()
    reporter.say(f"`sagepipe local run` and `local replay` here now use this emulator ({discovery}):")
    reporter.say("their runs accumulate in it until it stops. Then, with the variables above exported:")
    reporter.say("  sagepipe runs list")
    reporter.say()
    reporter.say("For example:")
    reporter.say(f"  aws s3 cp train.csv s3://{pipeline.data_bucket}/{pipeline.data_prefix}train.csv")
    machine = pipeline.stack.outputs["PipelineStateMachineArn"]
    reporter.say(f"  aws stepfunctions list-executions --state-machine-arn {machine}")
    reporter.say()
    reporter.say("Ctrl-C stops the emulator.")


# ------------------------------------------------------------------------------------------ manual runs
@main.command("run")
@click.option("--commit", required=True, help="The full commit SHA to train (git rev-parse <ref>).")
@click.option(
    "--data", "data_uri", required=True, metavar="S3_URI", help="The exact data version: s3://bucket/key?versionId=..."
)
@click.option("--reason", help="Why, for the audit record.")
@click.option("--force", is_flag=True, help="Train even when the training cache has a run with the same key.")
def run_manually(commit: str, data_uri: str, reason: str | None, force: bool) -> None:
    """Start a run for an explicit commit and data version (a 'Manual Run Requested' event).

    Uses boto3's usual configuration: AWS_PROFILE, AWS_REGION, and AWS_ENDPOINT_URL (so it works against
    `sagepipe local up` too).
    """
    import boto3
    from botocore.exceptions import NoCredentialsError

    from sagepipe.manual import ManualRunError, request_manual_run

    try:
        event_id = request_manual_run(
            boto3.client("events"),
            boto3.client("sts"),
            boto3.client("s3"),
            commit=commit,
            data_uri=data_uri,
            reason=reason,
            force=force,
        )
    except ManualRunError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except NoCredentialsError:
        click.echo("error: no AWS credentials (set AWS_PROFILE, or AWS_ENDPOINT_URL for `sagepipe local up`)", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"manual run requested: event {event_id}")
    click.echo(
        "The pipeline's ManualRunRequested rule starts the run; its record is RUN#<execution name> in the runs table."
    )


# ------------------------------------------------------------------------------------------ doctor
_STATUS_COLOURS = {"ok": "green", "problem": "red", "could not check": "yellow"}


@main.command()
@click.option("--stack", "stack_name", help="Stack name (default: stack_name in samconfig.toml).")
@click.option(
    "--config-env", default="default", show_default=True, help="samconfig.toml environment (stack name, overrides)."
)
@_PARAM
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def doctor(stack_name: str | None, config_env: str, params: tuple[str, ...], as_json: bool) -> None:
    """Check an account before (and after) `sam deploy`: credentials, quotas, connection, encryption.

    One line per check: ok, problem (with the fix), or could not check. Exits 3 when any check found a
    problem. Uses boto3's usual configuration: AWS_PROFILE, AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL (so it
    works against `sagepipe local up` too).
    """
    import boto3
    from botocore.config import Config

    from sagepipe import doctor as checks

    session = boto3.session.Session()
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)

    def clients(service: str, region: str | None) -> Any:
        factory: Any = session.client  # a plain str service name has no typed overload
        return factory(service, region_name=region or session.region_name, config=config)

    try:
        report = checks.run(
            clients, session.region_name, stack_name=stack_name, config_env=config_env, overrides=_parameters(params)
        )
    except checks.DoctorUsageError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        out = click.get_text_stream("stdout")
        click.echo(f"sagepipe doctor: stack {report.stack_name}, parameters from {', '.join(report.parameters_from)}")
        for result in report.results:
            line = result.line()
            if out.isatty():
                status = click.style(result.status, fg=_STATUS_COLOURS[result.status], bold=True)
                line = status + line[len(result.status) :]
            click.echo(line)
        problems = len(report.problems)
        click.echo(f"{problems} problem{'' if problems == 1 else 's'}" if problems else "no problems")
    sys.exit(EXIT_DOCTOR_PROBLEM if report.problems else 0)


# ------------------------------------------------------------------------------------------ the audit trail
EXIT_MODEL_DIFFERS = 3
EXIT_NOT_VERIFIED = 4
RUN_STATUSES = ("RUNNING", "SUCCEEDED", "REJECTED", "CACHED", "FAILED", "STOPPED", "SKIPPED", "DUPLICATE")
TRIGGER_KINDS = ("code", "data", "manual")  # docs/audit-record.md, `trigger_kind`


@main.group()
def runs() -> None:
    """Read the audit trail of a deployed (or local) stack: list, show, diff, lineage, rerun, verify.

    Every command finds the stack by name (--stack; else the running `sagepipe local up` that AWS_ENDPOINT_URL
    points at; else stack_name in ./samconfig.toml), uses boto3's usual configuration (AWS_PROFILE, AWS_REGION,
    and AWS_ENDPOINT_URL for a local stack), and has --json.
    """


_STACK = click.option(
    "--stack",
    "stack_name",
    envvar="SAGEPIPE_STACK",
    metavar="NAME",
    help="The stack's name (default: $SAGEPIPE_STACK; else the stack of the `sagepipe local up` in ./.sagepipe when "
    "AWS_ENDPOINT_URL is its endpoint; else stack_name in ./samconfig.toml).",
)
_RUNS_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table.")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _audit_command[**P, R](command: Callable[P, R]) -> Callable[P, R]:
    """Bad input and an environment that cannot answer end as one line on stderr and exit code 2."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        from sagepipe.runs.errors import RunsError

        try:
            return command(*args, **kwargs)
        except RunsError as error:
            _fail(str(error))
        except (NoCredentialsError, PartialCredentialsError):
            _fail("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID (and AWS_ENDPOINT_URL for a local stack)")
        except NoRegionError:
            _fail("no AWS region: set AWS_REGION (or a region in your AWS profile)")
        except EndpointConnectionError as error:
            _fail(f"cannot reach {error.kwargs.get('endpoint_url', 'AWS')}: is the endpoint right and running?")
        except ClientError as error:
            details = error.response.get("Error", {})
            _fail(f"{error.operation_name}: {details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": "))
        except BotoCoreError as error:
            _fail(str(error))

    return run


@dataclass
class _AuditTrail:
    """The stack, its runs table, and clients made from one boto3 session."""

    session: Any
    stack: Stack
    table: RunsTable

    def client(self, service: str) -> Any:
        return self.session.client(service)


def _audit_trail(stack_name: str | None) -> _AuditTrail:
    import boto3

    from sagepipe.runs.errors import RunsError
    from sagepipe.runs.queries import RunsTable
    from sagepipe.runs.stack import default_stack_name, describe_stack

    name = stack_name or _local_up_stack() or default_stack_name()
    if not name:
        raise RunsError("which stack? pass --stack NAME (there is no samconfig.toml with a stack_name here)")
    # A session per command: credentials and endpoint are read from the environment each time.
    session = boto3.session.Session()
    stack = describe_stack(session.client("cloudformation"), name)
    return _AuditTrail(session, stack, RunsTable(session.client("dynamodb"), stack.runs_table))


def _local_up_stack() -> str | None:
    """The stack of the `sagepipe local up` announced in ./.sagepipe when AWS_ENDPOINT_URL is its endpoint: against
    a running local up, `sagepipe runs` needs no --stack."""
    import os

    from sagepipe.local.session import for_endpoint

    up = for_endpoint(Path(".sagepipe"), os.environ.get("AWS_ENDPOINT_URL"))
    return up.stack if up else None


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _page_json(page: Any) -> dict[str, Any]:
    from sagepipe.runs.records import plain

    return {"index": page.index, "runs": [plain(record) for record in page.records], "next": page.next_token}


def _repository(path: Path | None) -> Path | None:
    from sagepipe.runs.diff import repository_at

    return repository_at(path)


@runs.command("list")
@click.option("--status", type=click.Choice(RUN_STATUSES, case_sensitive=False), help="Only runs that ended so.")
@click.option("--commit", help="Only runs of this commit (a full SHA, or an abbreviation git can expand here).")
@click.option(
    "--trigger", type=click.Choice(TRIGGER_KINDS, case_sensitive=False), help="Only runs this kind of trigger started."
)
@click.option("--since", help="Only runs started since: a date (2026-11-01), a time, or an age (7d, 12h, 30m).")
@click.option("--limit", type=int, default=20, show_default=True, help="Runs per page (1-1000).")
@click.option("--next", "next_token", metavar="TOKEN", help="The next page: the token the previous page printed.")
@click.option("--metric", default="validation:accuracy", show_default=True, help="The metric column.")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_list(  # noqa: PLR0917 - click passes the options by name
    status: str | None,
    commit: str | None,
    trigger: str | None,
    since: str | None,
    limit: int,
    next_token: str | None,
    metric: str,
    stack_name: str | None,
    as_json: bool,
) -> None:
    """Runs, newest first: one Query on the index the filters need, a page at a time."""
    from sagepipe.runs import render
    from sagepipe.runs.queries import parse_since, resolve_commit

    trail = _audit_trail(stack_name)
    page = trail.table.list(
        status=status.upper() if status else None,
        commit=resolve_commit(commit, _repository(None)) if commit else None,
        trigger=trigger.lower() if trigger else None,
        since=parse_since(since) if since else None,
        limit=limit,
        token=next_token,
    )
    if as_json:
        _echo_json(_page_json(page))
        return
    click.echo(render.runs_table(page.records, metric))
    if page.next_token:
        click.echo(f"\nmore: add --next {page.next_token}")


@runs.command("show")
@click.argument("run")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_show(run: str, stack_name: str | None, as_json: bool) -> None:
    """One run's whole record: trigger, code, data, image, training, result, ledger, with console links."""
    from sagepipe.runs import render
    from sagepipe.runs.records import lacks, links, plain

    record = _audit_trail(stack_name).table.get(run)
    if as_json:
        _echo_json({"record": plain(record), "links": links(record), "lacks": lacks(record)})
        return
    click.echo(render.show(record))


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The training code's git repository (default: the one here), to list the files that changed.",
)
@click.option("--all", "show_all", is_flag=True, help="Show the fields that are the same too.")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_diff(  # noqa: PLR0917 - click passes the options by name
    run_a: str, run_b: str, repo: Path | None, show_all: bool, stack_name: str | None, as_json: bool
) -> None:
    """Two runs side by side: commit (and its changed files), data, hyperparameters, instances, image, metrics
    with deltas, model."""
    from sagepipe.runs import render
    from sagepipe.runs.diff import diff_runs

    trail = _audit_trail(stack_name)
    result = diff_runs(trail.table.get(run_a), trail.table.get(run_b), _repository(repo))
    if as_json:
        _echo_json(result.as_json())
        return
    click.echo(render.diff(result, show_all))


@runs.command("lineage")
@click.option("--model-sha256", "model_sha256", metavar="SHA256", help="A model's content digest.")
@click.option(
    "--model-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A model.tar.gz: its content digest is computed here.",
)
@click.option("--commit", help="A commit (a full SHA, or an abbreviation git can expand here).")
@click.option("--data", "data_uri", metavar="S3_URI", help="A data version: s3://bucket/key?versionId=...")
@click.option("--limit", type=int, default=100, show_default=True, help="Runs per page (1-1000).")
@click.option("--next", "next_token", metavar="TOKEN", help="The next page: the token the previous page printed.")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_lineage(  # noqa: PLR0917 - click passes the options by name
    model_sha256: str | None,
    model_file: Path | None,
    commit: str | None,
    data_uri: str | None,
    limit: int,
    next_token: str | None,
    stack_name: str | None,
    as_json: bool,
) -> None:
    """Every run that produced a model, or used a commit, or a data version: one Query each."""
    from sagepipe.runs import render
    from sagepipe.runs.errors import RunsError
    from sagepipe.runs.queries import data_ref_of, model_digest_of, resolve_commit

    given = [value for value in (model_sha256, model_file, commit, data_uri) if value is not None]
    if len(given) != 1:
        raise RunsError("give exactly one of --model-sha256, --model-file, --commit and --data")
    digest = model_digest_of(model_sha256) if model_sha256 else _content_digest(model_file) if model_file else None
    key = {
        "model_content_sha256": digest,
        "commit_id": resolve_commit(commit, _repository(None)) if commit else None,
        "data_ref": data_ref_of(data_uri) if data_uri else None,
    }
    trail = _audit_trail(stack_name)
    page = trail.table.lineage(
        model_content_sha256=key["model_content_sha256"],
        commit=key["commit_id"],
        data_ref=key["data_ref"],
        limit=limit,
        token=next_token,
    )
    looked_up = {name: value for name, value in key.items() if value is not None}
    if as_json:
        _echo_json({"key": looked_up} | _page_json(page))
        return
    ((name, value),) = looked_up.items()
    commits = {record.get("commit_id") for record in page.records if record.get("commit_id")}
    data = {record.get("data_ref") for record in page.records if record.get("data_ref")}
    models = {record.get("model_content_sha256") for record in page.records if record.get("model_content_sha256")}
    click.echo(f"{name} = {value}")
    click.echo(
        f"{len(page.records)} run(s); {len(commits)} commit(s), {len(data)} data version(s), {len(models)} model(s)"
    )
    click.echo()
    click.echo(render.runs_table(page.records))
    if page.next_token:
        click.echo(f"\nmore: add --next {page.next_token}")


def _content_digest(path: Path) -> str:
    from sagepipe.runs.audit_digests import ContentDigestError, digest_archive
    from sagepipe.runs.errors import RunsError

    try:
        with path.open("rb") as archive:
            return digest_archive(archive).content_sha256
    except (ContentDigestError, OSError, EOFError, ValueError) as error:
        raise RunsError(f"{path} is not a model archive: {error}") from None


@runs.command("rerun")
@click.argument("run")
@click.option("--reason", help="Why, for the audit record (default: 're-run of RUN').")
@click.option("--force", is_flag=True, help="Train again even though the training cache has RUN's key (else: CACHED).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the re-run to end.")
@click.option("--timeout", type=float, help="Seconds to wait (default: the run's max runtime plus an hour).")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_rerun(  # noqa: PLR0917 - click passes the options by name
    run: str,
    reason: str | None,
    force: bool,
    wait: bool,
    timeout: float | None,
    stack_name: str | None,
    as_json: bool,
) -> None:
    """Train RUN's commit on its data version with its hyperparameters and instances again, recorded as a re-run
    of RUN; then say whether the model is identical (exit 3 when it is not, 1 when the re-run did not succeed)."""
    from sagepipe.runs.records import plain
    from sagepipe.runs.rerun import compare_models, request_rerun, wait_for_rerun

    trail = _audit_trail(stack_name)
    original = trail.table.get(run)
    request = request_rerun(
        trail.client("events"),
        trail.client("sts"),
        trail.client("s3"),
        original,
        trail.stack,
        reason=reason,
        force=force,
    )
    if not as_json:
        click.echo(f"re-run of {request.original} requested: event {request.event_id}, request {request.request_id}")
        for note in request.notes:
            click.echo(f"note: {note}", err=True)
    if not wait:
        if as_json:
            _echo_json({"request": request.as_json(), "rerun": None, "comparison": None})
        return
    limit = timeout if timeout is not None else float(original.get("max_runtime_seconds") or 3600) + 3600
    if not as_json:
        click.echo(f"waiting up to {limit:.0f} s for it to end…", err=True)
    record = wait_for_rerun(trail.table, request, timeout=limit, sfn=trail.client("stepfunctions"))
    if record is None:
        if as_json:
            _echo_json({"request": request.as_json(), "rerun": None, "comparison": None})
        click.echo(
            f"error: no final record of the re-run within {limit:.0f} s; "
            f"look for it with: sagepipe runs list --commit {request.commit}",
            err=True,
        )
        sys.exit(EXIT_RUN_NOT_SUCCEEDED)
    if record.get("status") == "CACHED":
        _report_cached_rerun(request.as_json(), plain(record), as_json=as_json)
        return
    comparison = compare_models(original, record)
    if as_json:
        _echo_json({"request": request.as_json(), "rerun": plain(record), "comparison": comparison.as_json()})
    else:
        click.echo(f"run {record['run_id']} {record['status']}")
        click.echo(comparison.detail)
    if record.get("status") != "SUCCEEDED":
        sys.exit(EXIT_RUN_NOT_SUCCEEDED)
    if comparison.identical is False:
        sys.exit(EXIT_MODEL_DIFFERS)


def _report_cached_rerun(request: dict[str, Any], record: dict[str, Any], *, as_json: bool) -> None:
    """A re-run whose training cache key matched: nothing was trained, so there is no model to compare."""
    if as_json:
        _echo_json({"request": request, "rerun": record, "comparison": None})
        return
    click.echo(f"run {record['run_id']} CACHED from run {record.get('cached_from')}: no training job ran")
    gate = record.get("gate")
    if isinstance(gate, dict):
        verdict = "passed" if gate.get("passed") is True else "REJECTED the cached model"
        click.echo(f"the quality gate {verdict}: {gate.get('summary')}")
    click.echo("its training cache key matches; to train again and compare the models, re-run with --force")


@runs.command("verify")
@click.argument("run")
@_STACK
@_RUNS_JSON
@_audit_command
def runs_verify(run: str, stack_name: str | None, as_json: bool) -> None:
    """Recompute the stored model's digests and check the record against its Object Lock ledger entry; exit 4
    on any mismatch, or when something cannot be checked, listing each."""
    from sagepipe.runs import render
    from sagepipe.runs.verify import verify

    trail = _audit_trail(stack_name)
    result = verify(trail.table.get(run), trail.client("s3"), trail.stack)
    if as_json:
        _echo_json(result.as_json())
    else:
        click.echo(render.verification(result))
    if not result.verified:
        sys.exit(EXIT_NOT_VERIFIED)


# ------------------------------------------------------------------------------------------ the model registry
@main.group()
def models() -> None:
    """The stack's model package group: list, show, approve, reject, champion.

    A version is a model that passed the quality gate; the champion is the latest Approved one. Like `sagepipe
    runs`, every command finds the stack by name and uses boto3's usual configuration (AWS_ENDPOINT_URL for a
    local stack), and has --json.
    """


def _registry(stack_name: str | None) -> Any:
    from sagepipe.models.registry import Registry

    trail = _audit_trail(stack_name)
    return Registry(trail.client("sagemaker"), trail.stack, trail.client("dynamodb")), trail


@models.command("list")
@click.option("--metric", default="validation:roc_auc", show_default=True, help="The metric column.")
@_STACK
@_RUNS_JSON
@_audit_command
def models_list(metric: str, stack_name: str | None, as_json: bool) -> None:
    """Every version, newest first: status, the metric, run and commit; the champion is marked with *."""
    from sagepipe.models import render

    registry, _ = _registry(stack_name)
    versions = registry.versions()
    if as_json:
        _echo_json({"group": registry.group, "versions": [item.as_json() for item in versions]})
        return
    click.echo(render.versions_table(versions, metric))


@models.command("show")
@click.argument("version")
@_STACK
@_RUNS_JSON
@_audit_command
def models_show(version: str, stack_name: str | None, as_json: bool) -> None:
    """One version (a number, or its ARN): what it holds, its run, and every decision recorded on that run."""
    from sagepipe.models import render

    registry, _ = _registry(stack_name)
    shown = registry.show(version)
    if as_json:
        _echo_json(shown.as_json())
        return
    click.echo(render.version(shown))


@models.command("champion")
@_STACK
@_RUNS_JSON
@_audit_command
def models_champion(stack_name: str | None, as_json: bool) -> None:
    """The champion: the latest Approved version, which the gate compares new runs with."""
    from sagepipe.models import render

    registry, _ = _registry(stack_name)
    champion = registry.champion()
    if as_json:
        _echo_json({"group": registry.group, "champion": champion.as_json() if champion else None})
        return
    click.echo(render.version(champion) if champion else "no champion yet: no version is Approved")


def _decide(version: str, reason: str, stack_name: str | None, as_json: bool, status: str) -> None:
    from sagepipe.manual import who_am_i
    from sagepipe.models import render

    registry, trail = _registry(stack_name)
    decided = registry.decide(version, status, reason, who_am_i(trail.client("sts")))
    if as_json:
        _echo_json(decided.as_json())
        return
    click.echo(render.version(decided))


_REASON = click.option("--reason", required=True, help="Why: recorded with the decision (ApprovalDescription).")


@models.command("approve")
@click.argument("version")
@_REASON
@_STACK
@_RUNS_JSON
@_audit_command
def models_approve(version: str, reason: str, stack_name: str | None, as_json: bool) -> None:
    """Approve VERSION: it becomes the champion if it is the newest Approved version. Records who and why."""
    _decide(version, reason, stack_name, as_json, "Approved")


@models.command("reject")
@click.argument("version")
@_REASON
@_STACK
@_RUNS_JSON
@_audit_command
def models_reject(version: str, reason: str, stack_name: str | None, as_json: bool) -> None:
    """Reject VERSION (a rejected champion hands over to the previous Approved version). Records who and why."""
    _decide(version, reason, stack_name, as_json, "Rejected")


# ------------------------------------------------------------------------------------------ the console
@main.command()
@_STACK
@click.option(
    "--local",
    "local_runs",
    is_flag=True,
    help="Read the runs `sagepipe local run` and `local replay` left in --state-dir, with no emulator running.",
)
@_STATE_DIR
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option("--host", default=None, metavar="HOST", help="Listen on HOST instead of 127.0.0.1 (prints a warning).")
@click.option("--metric", default="validation:accuracy", show_default=True, help="The primary metric.")
@click.option(
    "--refresh",
    type=click.FloatRange(0.5, 60.0),
    default=2.0,
    show_default=True,
    help="Seconds between live updates of an open page.",
)
@_audit_command
def console(  # noqa: PLR0917 - click passes the options by name
    stack_name: str | None,
    local_runs: bool,
    state_dir: Path,
    port: int,
    host: str | None,
    metric: str,
    refresh: float,
) -> None:
    """Serve the runs in a browser: the runs table (live), each run's execution graph with its states' input,
    output and errors beside its record, metrics and logs, two runs compared, a metric over time.

    Read-only. Reads the stack (--stack, else $SAGEPIPE_STACK, else stack_name in ./samconfig.toml) through boto3's
    usual configuration: AWS_ENDPOINT_URL and --stack sagepipe-local for a running `sagepipe local up`, whose logs
    it reads from --state-dir. With --local it reads the runs left in --state-dir instead.
    """
    import logging

    import boto3
    from botocore.config import Config

    from sagepipe.console.app import create_app
    from sagepipe.console.server import LOOPBACK, ConsoleServer, exposure_warning, trusted_hosts
    from sagepipe.console.sources import RunSource, StackRuns, StateDirRuns
    from sagepipe.runs.diff import repository_at
    from sagepipe.runs.errors import RunsError
    from sagepipe.runs.stack import default_stack_name

    source: RunSource
    if local_runs:
        if stack_name:
            raise RunsError("give --stack or --local, not both")
        if not (state_dir / "runs").is_dir():
            raise RunsError(f"no runs in {state_dir / 'runs'}: run `sagepipe local run` first, or pass --state-dir")
        source = StateDirRuns(state_dir)
    else:
        name = stack_name or default_stack_name()
        if not name:
            raise RunsError(
                "which stack? pass --stack NAME, or --local for the runs `sagepipe local run` left in .sagepipe"
            )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        source = StackRuns(boto3.session.Session(), name, state_dir=state_dir, config=config)
    listen = host or LOOPBACK
    app = create_app(
        source,
        refresh_seconds=refresh,
        metric=metric,
        repository=repository_at(None),
        trusted_hosts=trusted_hosts(listen),
    )
    try:
        server = ConsoleServer(app, listen, port)
    except OSError as error:
        raise RunsError(f"cannot listen on {listen}:{port}: {error.strerror or error}") from None
    # One line per request would bury the console's own output (a page polls every few seconds).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warning = exposure_warning(listen, server.port)
    if warning:
        click.echo(warning, err=True)
    click.echo(f"sagepipe console: {source.description}")
    click.echo(f"  open {server.url}")
    click.echo("  Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.server.server_close()


# ------------------------------------------------------------------------------------------ developer tooling
@main.group(hidden=True)
def dev() -> None:
    """Developer tooling used by the Makefile."""
    _require_project()


@dev.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".build"), show_default=True)
def translate(out_dir: Path) -> None:
    """Translate template.yaml (ASL inlined) for cfn-lint and checkov, with a copy that has every condition on."""
    from sagepipe.template import write_translations

    paths = write_translations(out_dir)
    for path in (paths.translated, paths.translated_all_features, paths.template_all_features):
        click.echo(f"wrote {path}")
