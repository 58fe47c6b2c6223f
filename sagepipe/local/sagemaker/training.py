"""One SageMaker training job, run locally: the platform's part here, the image's part by the image's own toolkit.

SageMaker prepares an instance, lays out /opt/ml, then starts the image as `docker run <image> train`; in an image
built on the sagemaker-training toolkit (container/Dockerfile), `train` is the toolkit's console script, which
derives the SM_* environment from /opt/ml and runs SAGEMAKER_PROGRAM. `run_training` splits the job the same way:

* the platform (this module) builds the job's /opt/ml tree under `work_dir`, as SageMaker writes it before the
  container starts: input/config/hyperparameters.json (the request's strings), inputdataconfig.json,
  resourceconfig.json, input/data/<channel>, empty model/ and output/data/, and the image's /opt/ml/code;
* the image: the toolkit's `train` runs as the job's process, from the directory that stands for the image's
  /opt/venv/bin (this machine's venv, which pins the image's packages), with SAGEMAKER_BASE_DIR=<work_dir>/opt/ml
  (environment.py: "Outside SageMaker, the environment variable SAGEMAKER_BASE_DIR defines the location of the
  base folder"). It reads the config files, exports SM_*, runs
  `<python> -- <SAGEMAKER_PROGRAM> --<hyperparameter> <value> ...` in the code directory, and writes
  output/success or output/failure before exiting 0 or 1, as it does on SageMaker;
* the platform again: stdout and stderr, line by line, go to a timestamped log (the job's CloudWatch stream) and
  through the job's MetricDefinitions (last value of each metric); MaxRuntimeInSeconds and StopTrainingJob end the
  process group (SIGTERM, SIGKILL after a grace); the exit status and output/failure become the job's status and
  FailureReason; /opt/ml/model and /opt/ml/output/data are packed into deterministic model.tar.gz and
  output.tar.gz.

The container's environment is the image's ENV, TRAINING_JOB_NAME and TRAINING_JOB_ARN, and the request's
Environment, in a fresh environment that inherits nothing from the caller (no AWS credentials or profiles). A few
variables exist only locally, because the job shares this machine instead of running in a container of its own:
SAGEMAKER_BASE_DIR (above) and those of `LOCAL_ONLY_ENVIRONMENT`.

POSIX only: the stop sequence signals a process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

from sagepipe.local import process
from sagepipe.local.warm_start import WarmProcess, WarmStarts

# ---------------------------------------------------------------- contract constants

CURRENT_HOST: Final = "algo-1"
NETWORK_INTERFACE_NAME: Final = "eth0"
INSTANCE_GROUP_NAME: Final = "homogeneousCluster"
"""What SageMaker writes to resourceconfig.json for a job without instance groups."""

ENTRY_POINT: Final = "train"
"""What SageMaker runs in the image (`docker run <image> train`, "How Amazon SageMaker Runs Your Training Image"):
the sagemaker-training toolkit's console script (its entry_points.txt: train = sagemaker_training.cli.train:main)."""

BASE_DIR_VARIABLE: Final = "SAGEMAKER_BASE_DIR"
"""The toolkit's environment.py reads /opt/ml's location from this variable when it is set (BASE_PATH_ENV)."""

LOCAL_ONLY_ENVIRONMENT: Final[Mapping[str, str]] = {
    # The toolkit waits until every host in resourceconfig.json resolves (entry_point._wait_hostname_resolution,
    # retried for up to 15 minutes). On SageMaker, algo-1 resolves on the job's network; here there is no such
    # network. The SageMaker Python SDK's local mode sets this variable for the same reason when its containers
    # share the host's network (sagemaker-python-sdk, modules/local_core/local_container.py), and the toolkit then
    # skips the wait.
    "SM_STUDIO_LOCAL_MODE": "True",
    # Nothing in the job may find this machine's AWS credentials: no variables or ~/.aws reach it (fresh
    # environment, HOME of its own), and botocore must not ask this machine's instance metadata service either,
    # which on an EC2 instance would hand it the instance's role (botocore.utils.IMDSFetcher reads this variable).
    "AWS_EC2_METADATA_DISABLED": "true",
    # The image is this machine's venv, so nothing may be installed into it, while the toolkit pip-installs a
    # requirements.txt or setup.py found in /opt/ml/code. pip reads every option from PIP_<OPTION> too: dry runs
    # only, without an index, and without pip's configuration files (PIP_CONFIG_FILE=os.devnull disables them
    # all). A requirement the venv meets passes; one it lacks fails the job as InstallRequirementsError, as it
    # fails a job with network isolation (the pipeline's Train state sets EnableNetworkIsolation) on SageMaker.
    "PIP_DRY_RUN": "1",
    "PIP_NO_INDEX": "1",
    "PIP_CONFIG_FILE": os.devnull,
}

_IMAGE_PATH_VARIABLES: Final = frozenset({"PATH", "HOME"})
"""Image ENV entries that name places in the image's filesystem: the local job keeps its own (its PATH starts with
the directory standing for the image's bin)."""

FAILURE_REASON_LIMIT: Final = 1024
"""DescribeTrainingJob's FailureReason holds at most 1024 characters (API reference)."""

ALGORITHM_ERROR_PREFIX: Final = "AlgorithmError: "
"""SageMaker prefixes the failure file's text with this in FailureReason (as in every toolkit failure reported
by real jobs: "AlgorithmError: ExecuteUserScriptError: ...", "AlgorithmError: framework error: ...")."""

STATUS_MESSAGES: Final[Mapping[str, str]] = {
    # The messages real jobs show (DescribeTrainingJob SecondaryStatusTransitions / the SDK's job log).
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Stopping": "Stopping the training job",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    # Not seen in a primary source: the wording AWS uses for this transition could not be confirmed.
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
    # Not seen in a primary source either: the local runtime's own wording for the Spot statuses (botocore's
    # SageMaker model lists Interrupted, Restarting and MaxWaitTimeExceeded among SecondaryStatus values).
    "Interrupted": "The job's Spot capacity was reclaimed; it restarts from its last checkpoint",
    "Restarting": "Restarting the training job on new capacity",
    "MaxWaitTimeExceeded": "Training job exceeded MaxWaitTimeInSeconds provided",
}

_CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]+")  # CreateTrainingJob's ChannelName pattern; also keeps paths safe

# CloudWatch Logs rejects events over 256 KB; a longer line (a progress bar without newlines) is split.
_LOG_EVENT_LIMIT: Final = 256 * 1024
_READER_JOIN_SECONDS: Final = 5.0
_ARCHIVE_MTIME: Final = 0  # fixed, so the same model bytes always give the same archive bytes
_LOG_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class TrainingRequestError(ValueError):
    """The request itself is malformed (what CreateTrainingJob would reject, or what the local runtime cannot
    honour, such as a missing toolkit); no job was run."""


# ---------------------------------------------------------------- request and result


@dataclass(frozen=True)
class TrainingRequest:
    job_name: str
    code_dir: Path
    """What the image has in /opt/ml/code (train.py etc.)."""
    image_environment: Mapping[str, str]
    """The image's ENV (container/Dockerfile's final stage): SAGEMAKER_PROGRAM names the program the toolkit runs
    (CreateTrainingJob's Environment can override it, as `docker run -e` overrides ENV)."""
    hyperparameters: Mapping[str, str]
    """As in CreateTrainingJob: every value a string."""
    channels: Mapping[str, Path]
    """Channel name -> local directory already holding the channel's files."""
    input_data_config: Sequence[Mapping[str, Any]]
    """CreateTrainingJob InputDataConfig (for inputdataconfig.json)."""
    resource_config: Mapping[str, Any]
    """CreateTrainingJob ResourceConfig."""
    max_runtime_seconds: float
    """StoppingCondition.MaxRuntimeInSeconds, counted from the start of the Training phase."""
    metric_definitions: Sequence[Mapping[str, str]]
    """AlgorithmSpecification.MetricDefinitions: [{"Name": ..., "Regex": ...}]."""
    work_dir: Path
    """Root under which this job's "/opt/ml" tree and its archives are created; <work_dir>/opt/ml must not exist."""
    log_path: Path
    """The job's log, like its CloudWatch stream algo-1-<ts>: one `<UTC timestamp> <message>` line per event."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """CreateTrainingJob Environment."""
    image_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)
    """What stands for the image's /opt/venv/bin: the directory holding the toolkit's `train` script, first on the
    job's PATH. By default this interpreter's, the dev venv, which pins the image's packages."""
    cancel: threading.Event | None = None
    """Set => StopTrainingJob."""
    training_input_mode: str = "File"
    """AlgorithmSpecification.TrainingInputMode, the default of each channel's InputMode."""
    job_arn: str | None = None
    """Exported as TRAINING_JOB_ARN when given, as SageMaker does (the SageMaker Experiments SDK, smexperiments
    _environment.py, tells a training job by this variable)."""
    stop_grace_seconds: float = 5.0
    """Between SIGTERM and SIGKILL. SageMaker allows 120 s; locally a short grace keeps stops quick."""
    max_wait_seconds: float | None = None
    """StoppingCondition.MaxWaitTimeInSeconds of a managed Spot job: its whole time, restarts included, counted
    from the job's start."""
    checkpoints: CheckpointStore | None = None
    """CheckpointConfig: where /opt/ml/checkpoints is kept between the job's runs (its S3Uri)."""
    spot_interruptions: int = 0
    """How many times the job's Spot capacity is reclaimed, each time once the job has written a checkpoint
    since it (re)started (a fault the local runtime injects; a Spot job only)."""
    warm_starts: WarmStarts | None = None
    """Where the entry point's process may be forked from an interpreter that has already imported its
    dependencies (sagepipe.local.warm_start); without it, or when none can be had, it starts cold."""

    @property
    def entry_point(self) -> Path:
        return self.image_bin / ENTRY_POINT


class CheckpointStore(Protocol):
    """CheckpointConfig.S3Uri: SageMaker copies /opt/ml/checkpoints there while the job runs, and back into a
    restarted job before its program starts (Developer Guide, "Checkpoints in Amazon SageMaker AI")."""

    def save(self, directory: Path) -> None: ...

    def restore(self, directory: Path) -> None: ...


@dataclass(frozen=True)
class TrainingResult:
    status: str
    """TrainingJobStatus: "Completed" | "Failed" | "Stopped"."""
    secondary_status: str
    """"Completed" | "Failed" | "MaxRuntimeExceeded" | "Stopped"."""
    failure_reason: str | None
    final_metrics: tuple[dict[str, Any], ...]
    """FinalMetricDataList: [{"MetricName", "Value" (float), "Timestamp" (datetime)}], last value per metric."""
    model_archive: Path | None
    """model.tar.gz of /opt/ml/model, whenever the entry point was started (SageMaker uploads what the model dir
    holds, for stopped jobs too)."""
    output_archive: Path | None
    """output.tar.gz of /opt/ml/output/data; None if that directory is empty."""
    exit_code: int | None
    """The entry point's (the toolkit's `train`) exit status, not the program's: the toolkit exits 1 whatever
    status the program failed with. Negative when a signal ended it; None if it never ran or could not be reaped."""
    start_time: datetime
    end_time: datetime
    secondary_status_transitions: tuple[dict[str, Any], ...]
    """Like DescribeTrainingJob's: Status, StartTime, EndTime, StatusMessage."""
    log_path: Path
    training_start_time: datetime | None = None
    """TrainingStartTime: when the entry point was started."""
    training_end_time: datetime | None = None
    """TrainingEndTime: when the entry point ended."""


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _MetricDefinition:
    name: str
    pattern: re.Pattern[str]


def _compile_definitions(definitions: Sequence[Mapping[str, str]]) -> tuple[_MetricDefinition, ...]:
    compiled = []
    for position, definition in enumerate(definitions):
        name, regex = definition.get("Name"), definition.get("Regex")
        if not isinstance(name, str) or not name or not isinstance(regex, str) or not regex:
            raise TrainingRequestError(
                f"MetricDefinitions[{position}] needs a non-empty Name and Regex: {definition!r}"
            )
        try:
            compiled.append(_MetricDefinition(name, re.compile(regex)))
        except re.error as error:
            raise TrainingRequestError(
                f"MetricDefinitions[{position}] ({name}): invalid Regex {regex!r}: {error}"
            ) from error
    return tuple(compiled)


def _metric_value(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    # CloudWatch metrics cannot hold NaN or infinities; SageMaker would not publish them either.
    return value if math.isfinite(value) else None


class _MetricTracker:
    """Applies every MetricDefinition to each log line, keeping the last value (and its time) per metric."""

    def __init__(self, definitions: Sequence[Mapping[str, str]]) -> None:
        self._definitions = _compile_definitions(definitions)
        self._last: dict[str, tuple[float, datetime]] = {}

    def observe(self, at: datetime, line: str) -> None:
        for definition in self._definitions:
            match = definition.pattern.search(line)
            # The metric is the first capture group; a regex without one captures nothing.
            if match is None or not match.groups():
                continue
            value = _metric_value(match.group(1))
            if value is not None:
                self._last[definition.name] = (value, at)

    def final(self) -> tuple[dict[str, Any], ...]:
        # Definition order, so the list is stable from run to run.
        names = dict.fromkeys(definition.name for definition in self._definitions)
        return tuple(
            {"MetricName": name, "Value": self._last[name][0], "Timestamp": self._last[name][1]}
            for name in names
            if name in self._last
        )


def parse_metrics(
    lines: Iterable[tuple[datetime, str]], definitions: Sequence[Mapping[str, str]]
) -> tuple[dict[str, Any], ...]:
    """FinalMetricDataList for log events `(timestamp, message)`: the last value each MetricDefinition captured.

    Each definition's regex is searched in every line; its first capture group, parsed as a finite float, is the
    value. Lines where it does not match, or captures something that is not a number, are ignored.
    """
    tracker = _MetricTracker(definitions)
    for at, line in lines:
        tracker.observe(at, line)
    return tracker.final()


# ---------------------------------------------------------------- the job's log


def _now() -> datetime:
    # CloudWatch Logs keeps milliseconds; truncating here makes the log file round-trip exactly.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def read_log(path: Path) -> tuple[tuple[datetime, str], ...]:
    """The events of a log written by `run_training`, as `(timestamp, message)` (e.g. to publish to CloudWatch)."""
    events = []
    # Split on "\n" only: a message may hold a carriage return (progress bars), as in CloudWatch.
    for raw in path.read_bytes().decode("utf-8").split("\n"):
        if not raw:
            continue
        stamp, _, message = raw.partition(" ")
        events.append((datetime.strptime(stamp, _LOG_TIME_FORMAT).replace(tzinfo=UTC), message))
    return tuple(events)


class _JobLog:
    """The job's log file; fed by the two output reader threads and by the runtime itself."""

    def __init__(self, path: Path, metrics: _MetricTracker) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("wb")
        self._metrics = metrics
        self._lock = threading.Lock()
        self._closed = False

    def emit(self, message: str) -> None:
        """One event per line, each timestamped when it arrived, as CloudWatch stamps events on receipt."""
        for line in message.split("\n"):
            at = _now()
            with self._lock:
                # A reader still draining an orphan's pipe after the job ended must not write anymore.
                if self._closed:
                    return
                stamp = f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"
                self._file.write(f"{stamp} {line}\n".encode())
                self._file.flush()
                self._metrics.observe(at, line)

    def final_metrics(self) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return self._metrics.final()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._file.close()


def _pump(stream: IO[bytes], log: _JobLog) -> None:
    with contextlib.suppress(OSError, ValueError):  # the pipe closing under us ends the stream, nothing more
        for raw in iter(lambda: stream.readline(_LOG_EVENT_LIMIT), b""):
            log.emit(raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", "replace"))


# ---------------------------------------------------------------- /opt/ml


@dataclass(frozen=True)
class _Layout:
    """The job's /opt/ml tree, rooted at <work_dir>/opt/ml."""

    root: Path

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def input_config(self) -> Path:
        return self.input / "config"

    @property
    def input_data(self) -> Path:
        return self.input / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure_file(self) -> Path:
        return self.output / "failure"

    @property
    def checkpoints(self) -> Path:
        """CheckpointConfig.LocalPath's default, /opt/ml/checkpoints."""
        return self.root / "checkpoints"


def _input_data_config_file(request: TrainingRequest) -> dict[str, dict[str, str]]:
    """inputdataconfig.json: the channels keyed by name, in the shape SageMaker writes (documented example)."""
    config: dict[str, dict[str, str]] = {}
    for channel in request.input_data_config:
        name = channel["ChannelName"]
        entry: dict[str, str] = {}
        if "ContentType" in channel:
            entry["ContentType"] = channel["ContentType"]
        entry["TrainingInputMode"] = channel.get("InputMode", request.training_input_mode)
        s3_source = channel.get("DataSource", {}).get("S3DataSource", {})
        entry["S3DistributionType"] = s3_source.get("S3DataDistributionType", "FullyReplicated")
        entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
        config[name] = entry
    return config


def _resource_config_file(request: TrainingRequest) -> dict[str, Any]:
    """resourceconfig.json as SageMaker writes it for one instance (as seen in real jobs' SM_RESOURCE_CONFIG)."""
    instance_type = str(request.resource_config.get("InstanceType") or "local")
    return {
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "current_group_name": INSTANCE_GROUP_NAME,
        "hosts": [CURRENT_HOST],
        "instance_groups": [
            {"instance_group_name": INSTANCE_GROUP_NAME, "instance_type": instance_type, "hosts": [CURRENT_HOST]}
        ],
        "network_interface_name": NETWORK_INTERFACE_NAME,
    }


def _validate_spot(request: TrainingRequest) -> None:
    if request.max_wait_seconds is not None and request.max_wait_seconds < request.max_runtime_seconds:
        raise TrainingRequestError(
            f"max_wait_seconds ({request.max_wait_seconds:g}) is shorter than max_runtime_seconds "
            f"({request.max_runtime_seconds:g})"
        )
    if request.spot_interruptions and request.max_wait_seconds is None:
        raise TrainingRequestError("only a managed Spot job (max_wait_seconds set) can be interrupted")


def _validate(request: TrainingRequest) -> None:
    if not (math.isfinite(request.max_runtime_seconds) and request.max_runtime_seconds > 0):
        raise TrainingRequestError(f"max_runtime_seconds must be a positive number, got {request.max_runtime_seconds}")
    _validate_spot(request)
    if not (request.entry_point.is_file() and os.access(request.entry_point, os.X_OK)):
        raise TrainingRequestError(
            f"the image's entry point `{ENTRY_POINT}` is not in {request.image_bin}: the local SageMaker runs the "
            "sagemaker-training toolkit's console script, as the image does; install the version "
            "container/requirements-toolkit.txt pins (make venv does)"
        )
    if not request.code_dir.is_dir():
        raise TrainingRequestError(f"the code directory {request.code_dir} does not exist")
    configured = []
    for position, channel in enumerate(request.input_data_config):
        name = channel.get("ChannelName")
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise TrainingRequestError(f"InputDataConfig[{position}] has no valid ChannelName: {name!r}")
        if channel.get("InputMode", request.training_input_mode) == "Pipe":
            raise TrainingRequestError(f"channel {name!r}: Pipe input mode is not supported locally")
        configured.append(name)
    if len(set(configured)) != len(configured):
        raise TrainingRequestError(f"InputDataConfig names a channel twice: {configured}")
    if set(configured) != set(request.channels):
        raise TrainingRequestError(
            f"channels {sorted(request.channels)} do not match InputDataConfig's channels {sorted(configured)}"
        )
    for name, directory in request.channels.items():
        if not directory.is_dir():
            raise TrainingRequestError(f"channel {name!r}: {directory} is not a directory")
    root = request.work_dir / "opt" / "ml"
    if root.exists():
        # SageMaker never reuses a job's volume; a stale model or failure file would change the outcome.
        raise TrainingRequestError(f"{root} already exists: every training job needs a fresh work_dir")


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def _instance_directories(request: TrainingRequest, layout: _Layout) -> None:
    """The directories the job writes, empty as on a new instance, with CheckpointConfig.S3Uri's checkpoints
    copied into /opt/ml/checkpoints."""
    for directory in (layout.model, layout.output_data, layout.checkpoints):
        directory.mkdir(parents=True)
    if request.checkpoints is not None:
        request.checkpoints.restore(layout.checkpoints)


def _prepare(request: TrainingRequest, layout: _Layout) -> None:
    """The Downloading phase: config files, channel data and code, where the container expects them."""
    for directory in (layout.input_config, layout.input_data):
        directory.mkdir(parents=True)
    _instance_directories(request, layout)
    # SageMaker passes the hyperparameters exactly as in the request: a JSON object of strings (the toolkit then
    # JSON-decodes each value: "200" becomes 200, "0.10" becomes 0.1).
    _write_json(layout.input_config / "hyperparameters.json", dict(request.hyperparameters))
    _write_json(layout.input_config / "inputdataconfig.json", _input_data_config_file(request))
    _write_json(layout.input_config / "resourceconfig.json", _resource_config_file(request))
    # Copies, not links: a program that writes into its input must not change the caller's files.
    for name, source in request.channels.items():
        shutil.copytree(source, layout.input_data / name)
    shutil.copytree(request.code_dir, layout.code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def container_environment(request: TrainingRequest, layout_root: Path) -> dict[str, str]:
    """The environment the job's container starts with; the toolkit adds SM_* and PYTHONPATH for the program.

    Layered as in the container: defaults, the image's ENV, what SageMaker sets (TRAINING_JOB_NAME,
    TRAINING_JOB_ARN), the request's Environment (`docker run -e` wins over ENV), then the local-only variables,
    which nothing may override. Nothing comes from the caller: no AWS credentials, profiles or endpoints reach the
    job, and its HOME is its own, so ~/.aws is out of reach too.
    """
    image = {name: value for name, value in request.image_environment.items() if name not in _IMAGE_PATH_VARIABLES}
    return {
        "PATH": os.pathsep.join([str(request.image_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(request.work_dir / "home"),
        "LANG": "C.UTF-8",
        **image,
        "TRAINING_JOB_NAME": request.job_name,
        **({"TRAINING_JOB_ARN": request.job_arn} if request.job_arn else {}),
        **request.environment,
        BASE_DIR_VARIABLE: str(layout_root),
        **LOCAL_ONLY_ENVIRONMENT,
    }


# ---------------------------------------------------------------- running the entry point


@dataclass(frozen=True)
class _Execution:
    exit_code: int | None
    stop: str | None
    """None, "Stopped", "MaxRuntimeExceeded", "MaxWaitTimeExceeded" or "Interrupted"."""
    started: datetime
    ended: datetime
    stop_requested: datetime | None = None
    launch_error: str | None = None


@dataclass(frozen=True)
class _Limit:
    """The time left to one run of the entry point, and what the job's status is when it runs out."""

    seconds: float
    stop: str
    """"MaxRuntimeExceeded" or "MaxWaitTimeExceeded"."""
    reason: str


def whole_files(directory: Path) -> list[Path]:
    """The files under `directory`, by name, but those being written: a name starting with a dot (train.py writes
    a checkpoint under such a name and renames it when complete)."""
    return [path for path in sorted(directory.rglob("*")) if path.is_file() and not path.name.startswith(".")]


def _has_checkpoint(layout: _Layout) -> bool:
    return bool(whole_files(layout.checkpoints))


def _execute(
    request: TrainingRequest,
    env: Mapping[str, str],
    layout: _Layout,
    log: _JobLog,
    *,
    limit: _Limit,
    reclaim: bool,
) -> _Execution:
    started = _now()
    # StopTrainingJob (cancel), the time limits and a reclaimed Spot instance all stop the job as SageMaker does:
    # SIGTERM, then SIGKILL after the grace period.
    supervisor = process.Supervisor.for_seconds(
        limit.seconds,
        request.cancel,
        grace_seconds=request.stop_grace_seconds,
        reclaim=(lambda: _has_checkpoint(layout)) if reclaim else None,
    )
    try:
        # The image's WORKDIR is /opt/ml/code (the toolkit runs the program there whatever the working directory).
        argv = [str(request.entry_point)]
        warm = request.warm_starts.start(argv, cwd=layout.code, env=env) if request.warm_starts else None
        log.emit(
            f"sagepipe local runtime: starting the image's entry point: {ENTRY_POINT} ({request.entry_point})"
            + (f", warm: forked from a process that has imported its dependencies (pid {warm.pid})" if warm else "")
        )
        entry_point: subprocess.Popen[bytes] | WarmProcess = warm or supervisor.start(
            argv, cwd=layout.code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as error:
        return _Execution(exit_code=None, stop=None, started=started, ended=_now(), launch_error=str(error))

    readers = [
        (threading.Thread(target=_pump, args=(stream, log), name=f"{request.job_name}-{name}", daemon=True), stream)
        for name, stream in (("stdout", entry_point.stdout), ("stderr", entry_point.stderr))
        if stream is not None
    ]
    for reader, _ in readers:
        reader.start()
    stop_requested: datetime | None = None

    def on_interrupt(why: process.Interruption) -> None:
        nonlocal stop_requested
        stop_requested = _now()
        reason = {"cancelled": "StopTrainingJob", "deadline": limit.reason, "reclaimed": "Spot capacity reclaimed"}[why]
        log.emit(f"Stopping the training job ({reason}): sending SIGTERM")

    def on_kill() -> None:
        log.emit(f"The job did not exit within {request.stop_grace_seconds:g} s of SIGTERM; sending SIGKILL")

    # The container is torn down when its main process ends: whatever the program left running goes too.
    why = supervisor.supervise(entry_point, on_interrupt=on_interrupt, on_kill=on_kill)
    ended = _now()
    for reader, stream in readers:
        reader.join(timeout=_READER_JOIN_SECONDS)
        # A reader still blocked means a process outside the group (it called setsid) holds the pipe open.
        # Closing the stream under it would block on the reader's buffer lock; the daemon thread is left to
        # end with that process, and the closed log drops whatever it still reads.
        if not reader.is_alive():
            stream.close()
    return _Execution(
        exit_code=entry_point.returncode,
        stop={"cancelled": "Stopped", "deadline": limit.stop, "reclaimed": "Interrupted"}[why] if why else None,
        started=started,
        ended=ended,
        stop_requested=stop_requested,
    )


# ---------------------------------------------------------------- artifacts


def _walk(directory: Path) -> Iterator[Path]:
    """Every entry under `directory`, sorted by name at each level; symlinked directories are not followed."""
    for entry in sorted(directory.iterdir(), key=lambda path: path.name):
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)


def _archive(source: Path, destination: Path) -> None:
    """A gzip tar of `source`'s contents, names relative to it, normalised so equal files give equal bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with (
        destination.open("wb") as raw,
        # No file name and a fixed time in the gzip header: both would otherwise vary between runs.
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=_ARCHIVE_MTIME) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _walk(source):
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            # root:root, as the files are in the container, and no time of day.
            info.mtime, info.uid, info.gid, info.uname, info.gname = _ARCHIVE_MTIME, 0, 0, "root", "root"
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(path.readlink()), 0o777
                tar.addfile(info)
            elif path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif path.is_file():
                info.size = path.stat().st_size
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                with path.open("rb") as content:
                    tar.addfile(info, content)
            # Sockets and FIFOs have no content to ship; SageMaker's archive would not carry them usefully.


def _has_entries(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


# ---------------------------------------------------------------- failure reasons


def _failure_reason(layout: _Layout, execution: _Execution) -> str:
    """FailureReason of a Failed job: the failure file's first 1024 characters, else the container's exit code.

    The toolkit writes the failure file itself when the program fails without one (and keeps the program's own).
    Without a file, SageMaker reports the exit code alone ("AlgorithmError: , exit code: 1", as real jobs show);
    a container ended by a signal exits 128 + its number.
    """
    if layout.failure_file.is_file():
        with layout.failure_file.open(encoding="utf-8", errors="replace") as handle:
            text = handle.read(FAILURE_REASON_LIMIT)
        return (ALGORITHM_ERROR_PREFIX + text.rstrip())[:FAILURE_REASON_LIMIT]
    if execution.launch_error is not None:
        return f"{ALGORITHM_ERROR_PREFIX}cannot run the image's entry point {ENTRY_POINT}: {execution.launch_error}"
    if execution.exit_code is None:
        return f"{ALGORITHM_ERROR_PREFIX}the job's process could not be reaped after SIGKILL"
    code = execution.exit_code if execution.exit_code >= 0 else 128 - execution.exit_code
    return f"{ALGORITHM_ERROR_PREFIX}, exit code: {code}"


# ---------------------------------------------------------------- the job


class _Transitions:
    def __init__(self) -> None:
        self._entries: list[tuple[str, datetime]] = []

    def enter(self, status: str, at: datetime | None = None) -> None:
        self._entries.append((status, at or _now()))

    def as_tuple(self, end: datetime) -> tuple[dict[str, Any], ...]:
        # Each status ends when the next begins; the final one starts and ends at the job's end.
        ends = [start for _, start in self._entries[1:]] + [end]
        return tuple(
            {"Status": status, "StartTime": start, "EndTime": finish, "StatusMessage": STATUS_MESSAGES[status]}
            for (status, start), finish in zip(self._entries, ends, strict=True)
        )


def _cancelled(request: TrainingRequest) -> bool:
    return request.cancel is not None and request.cancel.is_set()


def run_training(request: TrainingRequest) -> TrainingResult:
    """Run one training job locally, as SageMaker would, and describe how it ended.

    Raises TrainingRequestError, before anything runs, for a request CreateTrainingJob would reject (or that
    the local runtime cannot honour); every problem of the job itself is a Failed result with a FailureReason.
    """
    _validate(request)
    metrics = _MetricTracker(request.metric_definitions)
    layout = _Layout(request.work_dir / "opt" / "ml")
    transitions = _Transitions()
    start_time = _now()
    job_started = time.monotonic()
    transitions.enter("Starting", start_time)
    log = _JobLog(request.log_path, metrics)
    try:
        log.emit(f"sagepipe local runtime: training job {request.job_name} on host {CURRENT_HOST}")
        transitions.enter("Downloading")
        _prepare(request, layout)
        (request.work_dir / "home").mkdir(exist_ok=True)
        if _cancelled(request):
            # Stopped before the image ran: nothing to upload.
            transitions.enter("Stopping")
            return _finish(
                request,
                log,
                transitions=transitions,
                start_time=start_time,
                status="Stopped",
                secondary="Stopped",
                execution=None,
                model_archive=None,
                layout=None,
            )

        execution = _train(request, layout, log, transitions, job_started)
        if execution.stop is not None:
            transitions.enter("Stopping", execution.stop_requested)
            status, secondary = "Stopped", execution.stop
        elif execution.exit_code == 0:
            status = secondary = "Completed"
        else:
            status = secondary = "Failed"

        transitions.enter("Uploading")
        return _finish(
            request,
            log,
            transitions=transitions,
            start_time=start_time,
            status=status,
            secondary=secondary,
            execution=execution,
            model_archive=_model_archive(request, layout),
            layout=layout,
        )
    finally:
        log.close()


def _limit(request: TrainingRequest, trained_seconds: float, job_started: float) -> _Limit:
    """MaxRuntimeInSeconds counts the time the job trains, over all its runs; MaxWaitTimeInSeconds the job's
    whole time, restarts included (botocore's SageMaker model, StoppingCondition)."""
    runtime = _Limit(
        request.max_runtime_seconds - trained_seconds,
        "MaxRuntimeExceeded",
        f"MaxRuntimeInSeconds ({request.max_runtime_seconds:g} s)",
    )
    if request.max_wait_seconds is None:
        return runtime
    wait_left = request.max_wait_seconds - (time.monotonic() - job_started)
    if wait_left < runtime.seconds:
        return _Limit(wait_left, "MaxWaitTimeExceeded", f"MaxWaitTimeInSeconds ({request.max_wait_seconds:g} s)")
    return runtime


def _restart(request: TrainingRequest, layout: _Layout) -> None:
    """A reclaimed job restarts on a new instance: nothing of the old one's model, output or checkpoint
    directories survives but what was copied to CheckpointConfig.S3Uri, which is copied back."""
    for directory in (layout.model, layout.output, layout.checkpoints):
        shutil.rmtree(directory, ignore_errors=True)
    _instance_directories(request, layout)


def _train(
    request: TrainingRequest, layout: _Layout, log: _JobLog, transitions: _Transitions, job_started: float
) -> _Execution:
    """The Training phase: the entry point's runs, one more after each Spot interruption. Returns the last
    run, started when the first one did (the interruptions are in the transitions)."""
    env = container_environment(request, layout.root)
    trained = 0.0
    interruptions = 0
    first_started: datetime | None = None
    while True:
        transitions.enter("Training")
        limit = _limit(request, trained, job_started)
        execution = _execute(request, env, layout, log, limit=limit, reclaim=interruptions < request.spot_interruptions)
        trained += (execution.ended - execution.started).total_seconds()
        first_started = first_started or execution.started
        if request.checkpoints is not None:
            # SageMaker copies the directory to S3 while the job runs; a final copy stands for that here.
            request.checkpoints.save(layout.checkpoints)
        if execution.stop != "Interrupted":
            # TrainingStartTime is when the first run started.
            return dataclasses.replace(execution, started=first_started)
        interruptions += 1
        transitions.enter("Interrupted", execution.stop_requested)
        log.emit(f"sagepipe local runtime: Spot capacity reclaimed (interruption {interruptions}); restarting")
        transitions.enter("Restarting")
        _restart(request, layout)


def _model_archive(request: TrainingRequest, layout: _Layout) -> Path:
    destination = request.work_dir / "artifacts" / "model.tar.gz"
    _archive(layout.model, destination)
    return destination


def _finish(
    request: TrainingRequest,
    log: _JobLog,
    *,
    transitions: _Transitions,
    start_time: datetime,
    status: str,
    secondary: str,
    execution: _Execution | None,
    model_archive: Path | None,
    layout: _Layout | None,
) -> TrainingResult:
    output_archive = None
    failure_reason = None
    if layout is not None:
        if _has_entries(layout.output_data):
            output_archive = request.work_dir / "artifacts" / "output.tar.gz"
            _archive(layout.output_data, output_archive)
        # Only a Failed job has a FailureReason; a stopped one has none even if the program left a failure file.
        if status == "Failed" and execution is not None:
            failure_reason = _failure_reason(layout, execution)
    log.emit(f"sagepipe local runtime: training job {request.job_name} {secondary}")
    end_time = _now()
    transitions.enter(secondary, end_time)
    return TrainingResult(
        status=status,
        secondary_status=secondary,
        failure_reason=failure_reason,
        final_metrics=log.final_metrics(),
        model_archive=model_archive,
        output_archive=output_archive,
        exit_code=execution.exit_code if execution is not None else None,
        start_time=start_time,
        end_time=end_time,
        secondary_status_transitions=transitions.as_tuple(end_time),
        log_path=request.log_path,
        training_start_time=execution.started if execution is not None else None,
        training_end_time=execution.ended if execution is not None else None,
    )
