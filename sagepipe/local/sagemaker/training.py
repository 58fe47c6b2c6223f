"""One SageMaker training job, run locally under the SageMaker training contract.

The local runtime's `sagemaker:createTrainingJob.sync` adapter downloads the job's S3 channels, then calls
`run_training`, which does what a SageMaker training instance and the sagemaker-training toolkit in the
image would do, without Docker:

* builds the job's `/opt/ml` tree under `work_dir` (config JSON files, channels, code, model, output);
* runs `<python> <SAGEMAKER_PROGRAM> --<hyperparameter> <value> ...` in the code directory with the SM_*
  environment the toolkit exports, in an environment that does not inherit the caller's (no AWS
  credentials: the real job runs with network isolation);
* streams stdout and stderr, line by line, into a timestamped log (the job's CloudWatch stream) and applies
  the job's MetricDefinitions to every line, keeping the last value of each metric;
* enforces MaxRuntimeInSeconds and StopTrainingJob (SIGTERM to the job's process group, SIGKILL after a grace);
* turns the exit status and `/opt/ml/output/failure` into the job's status and FailureReason;
* packs `/opt/ml/model` and `/opt/ml/output/data` into deterministic model.tar.gz and output.tar.gz.

The adapter then uploads the archives and records the result in moto. The toolkit behaviour mirrored here
comes from aws/sagemaker-training-toolkit (environment.py, mapping.py, params.py, process.py, trainer.py,
files.py); the status vocabulary from the DescribeTrainingJob API reference.

POSIX only: the stop sequence signals a process group.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from sagepipe.local import process

# ---------------------------------------------------------------- contract constants

CURRENT_HOST: Final = "algo-1"
NETWORK_INTERFACE_NAME: Final = "eth0"
INSTANCE_GROUP_NAME: Final = "homogeneousCluster"
"""What SageMaker writes to resourceconfig.json for a job without instance groups."""

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
}

# Hyperparameters the toolkit keeps for itself (params.SAGEMAKER_HYPERPARAMETERS): they never reach the
# program's command line, nor SM_HPS. Every other `sagemaker_*` one is a "framework parameter".
_SAGEMAKER_HYPERPARAMETERS: Final = frozenset(
    {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
    }
)
_SAGEMAKER_PREFIX: Final = "sagemaker_"
_DEFAULT_LOG_LEVEL: Final = 20  # logging.INFO, the toolkit's default
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]+")  # CreateTrainingJob's ChannelName pattern; also keeps paths safe

# CloudWatch Logs rejects events over 256 KB; a longer line (a progress bar without newlines) is split.
_LOG_EVENT_LIMIT: Final = 256 * 1024
_READER_JOIN_SECONDS: Final = 5.0
_ARCHIVE_MTIME: Final = 0  # fixed, so the same model bytes always give the same archive bytes
_LOG_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class TrainingRequestError(ValueError):
    """The request itself is malformed (what CreateTrainingJob would reject); no job was run."""


# ---------------------------------------------------------------- request and result


@dataclass(frozen=True)
class TrainingRequest:
    job_name: str
    code_dir: Path
    """What the image has in /opt/ml/code (train.py etc.)."""
    program: str
    """SAGEMAKER_PROGRAM, e.g. "train.py" (an Environment entry SAGEMAKER_PROGRAM overrides it, as in the image)."""
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
    python: str = sys.executable
    cancel: threading.Event | None = None
    """Set => StopTrainingJob."""
    training_input_mode: str = "File"
    """AlgorithmSpecification.TrainingInputMode, the default of each channel's InputMode."""
    job_arn: str | None = None
    """Exported as TRAINING_JOB_ARN when given, as SageMaker does."""
    stop_grace_seconds: float = 5.0
    """Between SIGTERM and SIGKILL. SageMaker allows 120 s; locally a short grace keeps stops quick."""


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
    """model.tar.gz of /opt/ml/model, whenever the program was started (SageMaker uploads what the model dir
    holds, for stopped jobs too)."""
    output_archive: Path | None
    """output.tar.gz of /opt/ml/output/data; None if that directory is empty."""
    exit_code: int | None
    """The program's exit status; negative when a signal ended it; None if it never ran or could not be reaped."""
    start_time: datetime
    end_time: datetime
    secondary_status_transitions: tuple[dict[str, Any], ...]
    """Like DescribeTrainingJob's: Status, StartTime, EndTime, StatusMessage."""
    log_path: Path
    training_start_time: datetime | None = None
    """TrainingStartTime: when the program was started."""
    training_end_time: datetime | None = None
    """TrainingEndTime: when the program ended."""


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
    def output_intermediate(self) -> Path:
        return self.output / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.output / "failure"


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


def _validate(request: TrainingRequest) -> None:
    if not (math.isfinite(request.max_runtime_seconds) and request.max_runtime_seconds > 0):
        raise TrainingRequestError(f"max_runtime_seconds must be a positive number, got {request.max_runtime_seconds}")
    program = Path(request.environment.get("SAGEMAKER_PROGRAM", request.program))
    if not program.parts or program.is_absolute() or ".." in program.parts:
        raise TrainingRequestError(f"the program must be a relative path inside the code directory, got {program}")
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


def _prepare(request: TrainingRequest, layout: _Layout) -> None:
    """The Downloading phase: config files, channel data and code, where the container expects them."""
    for directory in (layout.input_config, layout.input_data, layout.model, layout.output_data):
        directory.mkdir(parents=True)
    # SageMaker passes the hyperparameters exactly as in the request: a JSON object of strings.
    _write_json(layout.input_config / "hyperparameters.json", dict(request.hyperparameters))
    _write_json(layout.input_config / "inputdataconfig.json", _input_data_config_file(request))
    _write_json(layout.input_config / "resourceconfig.json", _resource_config_file(request))
    # Copies, not links: a program that writes into its input must not change the caller's files.
    for name, source in request.channels.items():
        shutil.copytree(source, layout.input_data / name)
    shutil.copytree(request.code_dir, layout.code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


# ---------------------------------------------------------------- the toolkit's environment


def _decode_hyperparameter(value: str) -> Any:
    # environment.read_hyperparameters: each value is JSON-decoded when it can be, else kept as the string.
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def _env_value(value: Any) -> str:
    # mapping.to_env_vars: strings as they are, None as "", everything else as compact, key-sorted JSON.
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """mapping.to_cmd_args: `--name value` sorted by name (`-n` for one-letter names), values as str()."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        name = "" if not key else f"--{key}" if len(key) > 1 else f"-{key}"
        if isinstance(value, Mapping):
            text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            text = "" if value is None else str(value)
        args += [name, text]
    return args


@dataclass(frozen=True)
class _Invocation:
    command: list[str]
    environment: dict[str, str]
    sm_variables: dict[str, str]
    training_env: dict[str, Any]


def _invocation(request: TrainingRequest, layout: _Layout) -> _Invocation:
    """The command and environment that the toolkit's `train` entry point would give the program."""
    program = request.environment.get("SAGEMAKER_PROGRAM", request.program)
    decoded = {key: _decode_hyperparameter(value) for key, value in request.hyperparameters.items()}
    reserved = {
        key: value
        for key, value in decoded.items()
        if key in _SAGEMAKER_HYPERPARAMETERS or key.startswith(_SAGEMAKER_PREFIX)
    }
    hyperparameters = {key: value for key, value in decoded.items() if key not in reserved}
    framework_params = {key: value for key, value in reserved.items() if key not in _SAGEMAKER_HYPERPARAMETERS}
    log_level = reserved.get("sagemaker_container_log_level", _DEFAULT_LOG_LEVEL)
    resource_config = _resource_config_file(request)
    input_data_config = _input_data_config_file(request)
    channel_dirs = {name: str(layout.input_data / name) for name in input_data_config}
    instance_group = resource_config["instance_groups"][0]
    user_args = _cmd_args(hyperparameters)
    module_name = program.removesuffix(".py")
    num_cpus = os.cpu_count() or 1

    # environment.Environment's properties, which the toolkit exports whole as SM_TRAINING_ENV.
    training_env: dict[str, Any] = {
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": channel_dirs,
        "current_host": CURRENT_HOST,
        "current_instance_group": INSTANCE_GROUP_NAME,
        "current_instance_group_hosts": [CURRENT_HOST],
        "current_instance_type": resource_config["current_instance_type"],
        "distribution_hosts": [],
        "distribution_instance_groups": [],
        "framework_module": None,
        "hosts": [CURRENT_HOST],
        "hyperparameters": hyperparameters,
        "input_config_dir": str(layout.input_config),
        "input_data_config": input_data_config,
        "input_dir": str(layout.input),
        "instance_groups": [INSTANCE_GROUP_NAME],
        "instance_groups_dict": {INSTANCE_GROUP_NAME: instance_group},
        "is_hetero": False,
        "is_master": True,
        "is_modelparallel_enabled": None,
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": request.job_name,
        "log_level": log_level,
        "master_hostname": CURRENT_HOST,
        "model_dir": str(layout.model),
        "module_dir": str(layout.code),
        "module_name": module_name,
        "network_interface_name": NETWORK_INTERFACE_NAME,
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "output_data_dir": str(layout.output_data),
        "output_dir": str(layout.output),
        "output_intermediate_dir": str(layout.output_intermediate),
        "resource_config": resource_config,
        "topology": [],
        "user_entry_point": program,
    }
    # Environment.to_env_vars: each key becomes SM_<KEY>, upper-cased as is (SM_HP_BATCH-SIZE keeps its dash).
    exported: dict[str, Any] = {
        "hosts": [CURRENT_HOST],
        "network_interface_name": NETWORK_INTERFACE_NAME,
        "hps": hyperparameters,
        "user_entry_point": program,
        "framework_params": framework_params,
        "resource_config": resource_config,
        "input_data_config": input_data_config,
        "output_data_dir": str(layout.output_data),
        "channels": sorted(channel_dirs),
        "current_host": CURRENT_HOST,
        "current_instance_type": resource_config["current_instance_type"],
        "current_instance_group": INSTANCE_GROUP_NAME,
        "current_instance_group_hosts": [CURRENT_HOST],
        "instance_groups": [INSTANCE_GROUP_NAME],
        "instance_groups_dict": {INSTANCE_GROUP_NAME: instance_group},
        "distribution_instance_groups": [],
        "is_hetero": False,
        "module_name": module_name,
        "log_level": log_level,
        "framework_module": None,
        "input_dir": str(layout.input),
        "input_config_dir": str(layout.input_config),
        "output_dir": str(layout.output),
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "model_dir": str(layout.model),
        "module_dir": str(layout.code),
        "training_env": training_env,
        "user_args": user_args,
        "output_intermediate_dir": str(layout.output_intermediate),
    }
    exported |= {f"channel_{name}": path for name, path in channel_dirs.items()}
    exported |= {f"hp_{key}": value for key, value in hyperparameters.items()}
    sm_variables = {f"SM_{key.upper()}": _env_value(value) for key, value in exported.items()}

    # A fresh environment, layered as in the container: the platform's variables, the image's ENV, the
    # request's Environment (docker run -e wins over ENV), then what the toolkit exports (it wins over all).
    # Nothing comes from the caller: no AWS credentials, profiles or endpoints reach the job. HOME is the job's
    # own, so ~/.aws/credentials is out of reach too.
    environment = {
        "PATH": os.pathsep.join([str(Path(request.python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(request.work_dir / "home"),
        "LANG": "C.UTF-8",
        "TRAINING_JOB_NAME": request.job_name,
        **({"TRAINING_JOB_ARN": request.job_arn} if request.job_arn else {}),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SAGEMAKER_PROGRAM": program,
        **request.environment,
        "CURRENT_HOST": CURRENT_HOST,
        "SAGEMAKER_JOB_NAME": _env_value(reserved.get("sagemaker_job_name", "")),
        "SAGEMAKER_REGION": _env_value(reserved.get("sagemaker_region", "")),
        **sm_variables,
        # The toolkit sets PYTHONPATH to its own sys.path, which starts with the code directory.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(layout.code), request.environment.get("PYTHONPATH", "")])),
        # Forced even over the request's Environment: without it, lines reach the log (and metrics) late, and
        # whatever is buffered when the job is stopped is lost.
        "PYTHONUNBUFFERED": "1",
    }
    return _Invocation(
        command=[request.python, program, *user_args],
        environment=environment,
        sm_variables=sm_variables,
        training_env=training_env,
    )


def _log_invocation(log: _JobLog, invocation: _Invocation) -> None:
    # What the toolkit's log_script_invocation prints before running the script; SM_* only, never the
    # request's Environment, which may hold secrets.
    log.emit("sagemaker-training-toolkit INFO     Invoking user script")
    log.emit("Training Env:")
    log.emit(json.dumps(invocation.training_env, indent=4, sort_keys=True))
    log.emit("Environment variables:")
    for name, value in invocation.sm_variables.items():
        log.emit(f"{name}={value}")
    log.emit(f"PYTHONPATH={invocation.environment['PYTHONPATH']}")
    log.emit("Invoking script with the following command:")
    log.emit(" ".join(invocation.command))


# ---------------------------------------------------------------- running the program


@dataclass(frozen=True)
class _Execution:
    exit_code: int | None
    stop: str | None
    """None, "Stopped" or "MaxRuntimeExceeded"."""
    started: datetime
    ended: datetime
    stop_requested: datetime | None = None
    launch_error: str | None = None


_STOP_OF: Final[dict[process.Interruption, str]] = {"cancelled": "Stopped", "deadline": "MaxRuntimeExceeded"}


def _execute(
    request: TrainingRequest, command: Sequence[str], env: Mapping[str, str], layout: _Layout, log: _JobLog
) -> _Execution:
    started = _now()
    # Counted from the start of the Training phase; StopTrainingJob (cancel) and the limit both stop the program
    # as SageMaker does: SIGTERM, then SIGKILL after the grace period.
    supervisor = process.Supervisor.for_seconds(
        request.max_runtime_seconds, request.cancel, grace_seconds=request.stop_grace_seconds
    )
    try:
        program = supervisor.start(command, cwd=layout.code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        return _Execution(exit_code=None, stop=None, started=started, ended=_now(), launch_error=str(error))

    readers = [
        (threading.Thread(target=_pump, args=(stream, log), name=f"{request.job_name}-{name}", daemon=True), stream)
        for name, stream in (("stdout", program.stdout), ("stderr", program.stderr))
        if stream is not None
    ]
    for reader, _ in readers:
        reader.start()
    stop_requested: datetime | None = None

    def on_interrupt(why: process.Interruption) -> None:
        nonlocal stop_requested
        stop_requested = _now()
        reason = "StopTrainingJob" if why == "cancelled" else f"MaxRuntimeInSeconds ({request.max_runtime_seconds:g} s)"
        log.emit(f"Stopping the training job ({reason}): sending SIGTERM")

    def on_kill() -> None:
        log.emit(f"The program did not exit within {request.stop_grace_seconds:g} s of SIGTERM; sending SIGKILL")

    # The container is torn down when its main process ends: whatever the program left running goes too.
    why = supervisor.supervise(program, on_interrupt=on_interrupt, on_kill=on_kill)
    ended = _now()
    for reader, stream in readers:
        reader.join(timeout=_READER_JOIN_SECONDS)
        # A reader still blocked means a process outside the group (it called setsid) holds the pipe open.
        # Closing the stream under it would block on the reader's buffer lock; the daemon thread is left to
        # end with that process, and the closed log drops whatever it still reads.
        if not reader.is_alive():
            stream.close()
    return _Execution(
        exit_code=program.returncode,
        stop=_STOP_OF[why] if why is not None else None,
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


def _toolkit_failure_text(exit_code: int, command: Sequence[str]) -> str:
    """What the toolkit writes to the failure file when the script exits non-zero (ExecuteUserScriptError).

    The toolkit runs the script without capturing stderr, so ErrorMessage is empty; 137 gets its ExtraInfo.
    """
    lines = ["ExecuteUserScriptError:", f"ExitCode {exit_code}", 'ErrorMessage ""']
    if exit_code == 137:
        lines.append('ExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"')
    lines.append(f'Command "{" ".join(command)}"')
    return "\n".join(lines)


def _write_failure_file(layout: _Layout, text: str) -> None:
    # files.write_failure_file: only when the program did not write its own.
    if not layout.failure_file.exists():
        layout.failure_file.write_text(text, encoding="utf-8")


def _failure_reason(layout: _Layout) -> str:
    with layout.failure_file.open(encoding="utf-8", errors="replace") as handle:
        text = handle.read(FAILURE_REASON_LIMIT)
    return (ALGORITHM_ERROR_PREFIX + text.rstrip())[:FAILURE_REASON_LIMIT]


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
    transitions.enter("Starting", start_time)
    log = _JobLog(request.log_path, metrics)
    try:
        log.emit(f"sagepipe local runtime: training job {request.job_name} on host {CURRENT_HOST}")
        transitions.enter("Downloading")
        _prepare(request, layout)
        (request.work_dir / "home").mkdir(exist_ok=True)
        if _cancelled(request):
            # Stopped before the program ran: nothing to upload.
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

        transitions.enter("Training")
        invocation = _invocation(request, layout)
        program_path = layout.code / invocation.environment["SAGEMAKER_PROGRAM"]
        if not program_path.is_file():
            present = ", ".join(sorted(path.name for path in layout.code.iterdir())) or "nothing"
            text = (
                f"ExecuteUserScriptError: the entry point {program_path.name} (SAGEMAKER_PROGRAM) does not exist in "
                f"the code directory {layout.code}, which holds: {present}"
            )
            log.emit(f"sagemaker-training-toolkit ERROR    {text}")
            _write_failure_file(layout, text)
            transitions.enter("Uploading")
            model = _model_archive(request, layout)
            return _finish(
                request,
                log,
                transitions=transitions,
                start_time=start_time,
                status="Failed",
                secondary="Failed",
                execution=None,
                model_archive=model,
                layout=layout,
            )

        _log_invocation(log, invocation)
        execution = _execute(request, invocation.command, invocation.environment, layout, log)
        if execution.stop is not None:
            transitions.enter("Stopping", execution.stop_requested)
            status, secondary = "Stopped", execution.stop
        elif execution.exit_code == 0:
            log.emit("sagemaker-training-toolkit INFO     Reporting training SUCCESS")
            # files.write_success_file: SageMaker's documented success marker.
            (layout.output / "success").write_text("", encoding="utf-8")
            status = secondary = "Completed"
        else:
            if execution.launch_error is not None:
                _write_failure_file(
                    layout,
                    f'ExecuteUserScriptError:\nErrorMessage "{execution.launch_error}"\n'
                    f'Command "{" ".join(invocation.command)}"',
                )
            elif execution.exit_code is not None:
                _write_failure_file(layout, _toolkit_failure_text(execution.exit_code, invocation.command))
            else:
                _write_failure_file(layout, "ExecuteUserScriptError: the program could not be reaped after SIGKILL")
            log.emit("sagemaker-training-toolkit ERROR    Reporting training FAILURE")
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
        if status == "Failed" and layout.failure_file.is_file():
            failure_reason = _failure_reason(layout)
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
