"""The local SageMaker training job: the training contract, statuses, metrics and artifacts of one job.

Every job runs the image's own entry point, the sagemaker-training toolkit's `train`, with the real image's ENV
(container/Dockerfile); the toolkit runs the program. The real container/train.py runs on a CSV made from
scikit-learn's bundled breast-cancer data (never downloaded); small stub programs stand in where a test needs a
program to misbehave or to report what it was given.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

from sagepipe.local import process
from sagepipe.local.images import image_environment
from sagepipe.local.sagemaker.training import (
    FAILURE_REASON_LIMIT,
    LOCAL_ONLY_ENVIRONMENT,
    TrainingRequest,
    TrainingRequestError,
    TrainingResult,
    parse_metrics,
    read_log,
    run_training,
)

REPO = Path(__file__).resolve().parents[2]
TRAIN_PY = REPO / "container" / "train.py"
# The MetricDefinitions the deployed state machine gives the Train state, so the test follows the pipeline.
METRIC_DEFINITIONS: list[dict[str, str]] = json.loads((REPO / "statemachine" / "pipeline.asl.json").read_text())[
    "States"
]["Train"]["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
METRIC_NAMES = ["train:accuracy", "validation:accuracy", "validation:f1", "validation:roc_auc"]
TRAIN_PY_HYPERPARAMETERS = {
    "n_estimators": "20",
    "max_depth": "2",
    "learning_rate": "0.1",
    "seed": "7",
    "validation_fraction": "0.25",
}
# The image's ENV, as container/Dockerfile sets it: every job here runs in the image the pipeline builds.
IMAGE_ENVIRONMENT = image_environment((REPO / "container" / "Dockerfile").read_text(encoding="utf-8"))
STOP_DEADLINE_SECONDS = 5.0
EVENT_TIMEOUT_SECONDS = 60.0
TOOLKIT_LOG = re.compile(r"^\S+ \S+ sagemaker-training-toolkit (INFO|ERROR) +(?P<message>.*)$")

# ---------------------------------------------------------------- stub programs

DUMP_INVOCATION = """
import json, os, sys
record = {
    "argv": sys.argv,
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "channel_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "invocation.json"), "w") as handle:
    json.dump(record, handle)
"""

EXIT_3 = """
import sys
print("about to fail", file=sys.stderr)
sys.exit(3)
"""

LONG_FAILURE = """
import os, sys
with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as handle:
    handle.write("E" * 5000)
raise SystemExit(1)
"""

SLEEP_AFTER_PARTIAL_MODEL = """
import os, time
with open(os.path.join(os.environ["SM_MODEL_DIR"], "partial.bin"), "wb") as handle:
    handle.write(b"checkpoint")
print("checkpoint written", flush=True)
time.sleep(30)
"""

IGNORE_SIGTERM = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "pid"), "w") as handle:
    handle.write(str(os.getpid()))
print("ignoring SIGTERM", flush=True)
time.sleep(30)
"""

FIXED_MODEL = """
import os
model_dir = os.environ["SM_MODEL_DIR"]
os.makedirs(os.path.join(model_dir, "sub"))
with open(os.path.join(model_dir, "weights.bin"), "wb") as handle:
    handle.write(bytes(range(256)) * 64)
with open(os.path.join(model_dir, "sub", "config.json"), "w") as handle:
    handle.write('{"layers": 3}')
"""

BOTH_STREAMS = """
import sys
print("epoch 1 loss=0.9;", flush=True)
print("epoch 1 acc=0.5;", file=sys.stderr, flush=True)
"""


# ---------------------------------------------------------------- helpers


def write_breast_cancer_csv(path: Path) -> None:
    data = load_breast_cancer()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "target"])
        for features, label in zip(data.data, data.target, strict=True):
            writer.writerow([*(repr(float(value)) for value in features), int(label)])


def code_dir_with(root: Path, files: Mapping[str, str]) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    for name, text in files.items():
        (code / name).write_text(text, encoding="utf-8")
    return code


def code_dir_with_train_py(root: Path) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    shutil.copy(TRAIN_PY, code / "train.py")
    return code


def make_request(root: Path, code_dir: Path, program: str, channel: Path, **changes: Any) -> TrainingRequest:
    """A job in the pipeline's image, whose SAGEMAKER_PROGRAM is `program`."""
    request = TrainingRequest(
        job_name="sagepipe-test-job-0",
        code_dir=code_dir,
        image_environment={**IMAGE_ENVIRONMENT, "SAGEMAKER_PROGRAM": program},
        hyperparameters={},
        channels={"train": channel},
        input_data_config=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bucket/runs/r1/input/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        resource_config={"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
        max_runtime_seconds=60,
        metric_definitions=METRIC_DEFINITIONS,
        work_dir=root / "job",
        log_path=root / "logs" / "algo-1-1700000000",
    )
    return replace(request, **changes)


def archive_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def archive_file(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None, f"{name} is not a file in {path}"
        return extracted.read()


def statuses(result: TrainingResult) -> list[str]:
    return [transition["Status"] for transition in result.secondary_status_transitions]


def log_messages(result: TrainingResult) -> list[str]:
    return [message for _, message in read_log(result.log_path)]


def toolkit_messages(result: TrainingResult) -> list[str]:
    """What the toolkit logged (its logger's lines), without its time, name and level columns."""
    return [match["message"] for message in log_messages(result) if (match := TOOLKIT_LOG.match(message))]


def cancel_once_logged(request: TrainingRequest, line: str, cancel: threading.Event) -> threading.Thread:
    """A thread that sets `cancel` (StopTrainingJob) as soon as the job's log holds `line`."""

    def logged() -> bool:
        if not request.log_path.is_file():
            return False
        # Each event is `<timestamp> <message>`; a line still being written simply does not match yet.
        events = request.log_path.read_text(encoding="utf-8", errors="replace").split("\n")
        return line in {event.partition(" ")[2] for event in events}

    def watch() -> None:
        if process.poll_until(logged, timeout=EVENT_TIMEOUT_SECONDS):
            cancel.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def breast_cancer_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    channel = tmp_path_factory.mktemp("channel") / "train"
    write_breast_cancer_csv(channel / "train.csv")
    return channel


@pytest.fixture(scope="module")
def train_py_job(tmp_path_factory: pytest.TempPathFactory, breast_cancer_channel: Path) -> TrainingResult:
    """The real train.py, run once as a training job on the breast-cancer CSV."""
    root = tmp_path_factory.mktemp("train-py")
    request = make_request(
        root,
        code_dir_with_train_py(root),
        "train.py",
        breast_cancer_channel,
        hyperparameters=TRAIN_PY_HYPERPARAMETERS,
    )
    return run_training(request)


@pytest.fixture(scope="module")
def invocation_job(tmp_path_factory: pytest.TempPathFactory, breast_cancer_channel: Path) -> dict[str, Any]:
    """A stub that records its argv and environment, run while the caller holds AWS credentials."""
    root = tmp_path_factory.mktemp("invocation")
    request = make_request(
        root,
        code_dir_with(root, {"dump.py": DUMP_INVOCATION}),
        "dump.py",
        breast_cancer_channel,
        hyperparameters={
            "n_estimators": "200",
            "learning_rate": "0.10",
            "a": "x",
            "early_stop": "true",
            "sagemaker_program": "other.py",
            "sagemaker_container_log_level": "10",
        },
        environment={"MY_SETTING": "on"},
        job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/sagepipe-test-job-0",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        patch.setenv("AWS_SESSION_TOKEN", "session-token")
        patch.setenv("AWS_PROFILE", "production")
        patch.setenv("CALLER_ONLY_VARIABLE", "leaked")
        result = run_training(request)
    assert result.status == "Completed", result.failure_reason
    assert result.model_archive is not None
    record = json.loads(archive_file(result.model_archive, "invocation.json"))
    return {"request": request, "result": result, **record}


# ---------------------------------------------------------------- the real train.py


def test_train_py_completes_with_its_four_metrics_as_final_metrics(train_py_job: TrainingResult) -> None:
    """Given train.py on the breast-cancer CSV, when it runs as a job, then the job is Completed and its
    FinalMetricDataList holds the four metrics, equal to what train.py wrote to metrics.json."""
    assert (train_py_job.status, train_py_job.secondary_status) == ("Completed", "Completed")
    assert train_py_job.failure_reason is None
    assert train_py_job.exit_code == 0
    assert train_py_job.output_archive is not None
    written = json.loads(archive_file(train_py_job.output_archive, "metrics.json"))["metrics"]
    assert [metric["MetricName"] for metric in train_py_job.final_metrics] == METRIC_NAMES
    assert {metric["MetricName"]: metric["Value"] for metric in train_py_job.final_metrics} == written
    for metric in train_py_job.final_metrics:
        assert isinstance(metric["Value"], float)
        assert train_py_job.start_time <= metric["Timestamp"] <= train_py_job.end_time


def test_train_py_model_archive_holds_a_model_that_loads_and_predicts(train_py_job: TrainingResult) -> None:
    """Then model.tar.gz holds model.joblib at its root (paths relative to /opt/ml/model), and it predicts."""
    assert train_py_job.model_archive is not None
    assert list(archive_members(train_py_job.model_archive)) == ["model.joblib"]
    with tarfile.open(train_py_job.model_archive, "r:gz") as tar:
        handle = tar.extractfile("model.joblib")
        assert handle is not None
        model = joblib.load(handle)
    features = load_breast_cancer().data[:10]
    assert set(np.unique(model.predict(features))) <= {0, 1}


def test_train_py_job_goes_through_the_sagemaker_secondary_statuses(train_py_job: TrainingResult) -> None:
    """Then the transitions are Starting, Downloading, Training, Uploading, Completed, back to back in time."""
    transitions = train_py_job.secondary_status_transitions
    assert statuses(train_py_job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert transitions[0]["StartTime"] == train_py_job.start_time
    assert transitions[-1]["EndTime"] == train_py_job.end_time
    for current, following in itertools.pairwise(transitions):
        assert current["StartTime"] <= current["EndTime"] == following["StartTime"]
    assert transitions[2]["StatusMessage"] == "Training image download completed. Training in progress."
    assert transitions[-1]["StatusMessage"] == "Training job completed"
    assert train_py_job.training_start_time is not None
    assert train_py_job.training_end_time is not None
    assert transitions[2]["StartTime"] <= train_py_job.training_start_time < train_py_job.training_end_time


def test_train_py_log_holds_stdout_and_stderr_with_timestamps(train_py_job: TrainingResult) -> None:
    """Then the log holds train.py's stdout (metric lines) and stderr (its progress), timestamped like
    CloudWatch events, and re-parsing it gives the same final metrics."""
    events = read_log(train_py_job.log_path)
    messages = [message for _, message in events]
    assert any(message.startswith("validation:roc_auc=") for message in messages)  # stdout
    assert any(message.startswith("hyperparameters: n_estimators=20") for message in messages)  # stderr
    assert "Invoking script with the following command:" in messages  # the toolkit's, on its stderr
    times = [at for at, _ in events]
    assert times == sorted(times)
    assert all(train_py_job.start_time <= at <= train_py_job.end_time for at in times)
    assert parse_metrics(events, METRIC_DEFINITIONS) == train_py_job.final_metrics


def test_train_py_failure_file_becomes_the_failure_reason(tmp_path: Path) -> None:
    """Given a channel without the `target` column, when train.py fails and writes /opt/ml/output/failure,
    then the job is Failed and FailureReason is that file's text, as SageMaker reports it."""
    channel = tmp_path / "data"
    channel.mkdir()
    (channel / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n", encoding="utf-8")
    request = make_request(tmp_path, code_dir_with_train_py(tmp_path), "train.py", channel)

    result = run_training(request)

    assert (result.status, result.secondary_status, result.exit_code) == ("Failed", "Failed", 1)
    failure_file = request.work_dir / "opt" / "ml" / "output" / "failure"
    assert result.failure_reason == "AlgorithmError: " + failure_file.read_text(encoding="utf-8").rstrip()
    assert "no 'target' column" in result.failure_reason
    assert statuses(result)[-1] == "Failed"
    assert result.secondary_status_transitions[-1]["StatusMessage"] == "Training job failed"


def test_the_image_s_toolkit_runs_the_program(train_py_job: TrainingResult) -> None:
    """Then the job's process was the toolkit's `train`: its log lines say it bypassed the cluster DNS wait (there
    is no algo-1 here), invoked train.py through the interpreter with the hyperparameters, and reported success,
    and it left SageMaker's success marker in /opt/ml/output."""
    logged = toolkit_messages(train_py_job)
    messages = log_messages(train_py_job)
    assert "Invoking user script" in logged
    assert logged[-1] == "Reporting training SUCCESS"
    assert any(
        message.startswith("sagepipe local runtime: starting the image's entry point: train (") for message in messages
    )
    # The toolkit logs the command two lines below its heading.
    command = messages[messages.index("Invoking script with the following command:") + 2]
    assert re.fullmatch(
        r"\S+/python[0-9.]* -- train\.py --learning_rate 0\.1 --max_depth 2 --n_estimators 20 --seed 7 "
        r"--validation_fraction 0\.25",
        command,
    ), command
    assert any(
        message.endswith("INFO     Bypass DNS check in case of Studio Local Mode execution.") for message in messages
    )
    opt_ml = train_py_job.log_path.parent.parent / "job" / "opt" / "ml"
    assert (opt_ml / "output" / "success").is_file()
    assert not (opt_ml / "output" / "failure").exists()


# ---------------------------------------------------------------- the contract, seen from the program


def test_program_runs_with_the_toolkits_arguments(invocation_job: dict[str, Any]) -> None:
    """Then the toolkit JSON-decodes the hyperparameters and passes them sorted by name as `--name value` (`-a`
    for a one-letter name), without its own sagemaker_* ones, from the code dir; the image's SAGEMAKER_PROGRAM
    wins over the sagemaker_program hyperparameter."""
    request: TrainingRequest = invocation_job["request"]
    code = request.work_dir / "opt" / "ml" / "code"
    assert invocation_job["argv"] == [
        "dump.py",
        "-a",
        "x",
        "--early_stop",
        "True",
        "--learning_rate",
        "0.1",
        "--n_estimators",
        "200",
    ]
    assert Path(invocation_job["cwd"]) == code
    assert invocation_job["env"]["SM_USER_ARGS"] == json.dumps(invocation_job["argv"][1:], separators=(",", ":"))


def test_program_sees_the_sm_environment(invocation_job: dict[str, Any]) -> None:
    """Then the toolkit, told where the job's /opt/ml is, exports the SM_* variables pointing into it, and the
    program also sees what SageMaker and the image set: the job's name and ARN, the request's Environment, the
    image's ENV."""
    env: dict[str, str] = invocation_job["env"]
    opt_ml = invocation_job["request"].work_dir / "opt" / "ml"
    assert env["SAGEMAKER_BASE_DIR"] == str(opt_ml)
    assert env["SM_MODEL_DIR"] == str(opt_ml / "model")
    assert env["SM_OUTPUT_DIR"] == str(opt_ml / "output")
    assert env["SM_OUTPUT_DATA_DIR"] == str(opt_ml / "output" / "data")
    assert env["SM_INPUT_DIR"] == str(opt_ml / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(opt_ml / "input" / "config")
    assert env["SM_MODULE_DIR"] == str(opt_ml / "code")
    assert env["SM_CHANNELS"] == '["train"]'
    assert env["SM_CHANNEL_TRAIN"] == str(opt_ml / "input" / "data" / "train")
    assert invocation_job["channel_files"] == ["train.csv"]
    assert json.loads(env["SM_HPS"]) == {"a": "x", "early_stop": True, "learning_rate": 0.1, "n_estimators": 200}
    assert (env["SM_HP_N_ESTIMATORS"], env["SM_HP_LEARNING_RATE"], env["SM_HP_A"]) == ("200", "0.1", "x")
    assert env["SM_HP_EARLY_STOP"] == "true"
    assert not any(name.startswith("SM_HP_SAGEMAKER") for name in env)
    assert env["SM_LOG_LEVEL"] == "10"
    assert (env["SM_CURRENT_HOST"], env["SM_HOSTS"]) == ("algo-1", '["algo-1"]')
    # The toolkit counts this machine's CPUs and GPUs (nvidia-smi), as it counts the instance's.
    assert env["SM_NUM_CPUS"] == str(os.cpu_count())
    assert env["SM_NUM_GPUS"].isdigit()
    assert (env["SM_USER_ENTRY_POINT"], env["SM_MODULE_NAME"]) == ("dump.py", "dump")
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_instance_type"] == "ml.m5.large"
    assert json.loads(env["SM_INPUT_DATA_CONFIG"])["train"]["ContentType"] == "text/csv"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["job_name"] == "sagepipe-test-job-0"
    assert training_env["channel_input_dirs"] == {"train": env["SM_CHANNEL_TRAIN"]}
    assert training_env["hyperparameters"] == json.loads(env["SM_HPS"])
    assert env["TRAINING_JOB_NAME"] == "sagepipe-test-job-0"
    assert env["TRAINING_JOB_ARN"].endswith(":training-job/sagepipe-test-job-0")
    assert env["MY_SETTING"] == "on"
    assert env["SAGEMAKER_PROGRAM"] == "dump.py"
    assert (env["PYTHONUNBUFFERED"], env["PYTHONDONTWRITEBYTECODE"]) == ("1", "1")  # the image's ENV
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(opt_ml / "code")


def test_callers_aws_environment_does_not_reach_the_program(invocation_job: dict[str, Any]) -> None:
    """Given the caller holds AWS credentials and a profile in its environment, then the job sees none of
    them, nor anything else of the caller's environment, has its own HOME (no ~/.aws either), and botocore in
    it may not ask this machine's instance metadata service for credentials."""
    env: dict[str, str] = invocation_job["env"]
    assert {name: value for name, value in env.items() if name.startswith("AWS_")} == {
        "AWS_EC2_METADATA_DISABLED": "true"
    }
    assert "CALLER_ONLY_VARIABLE" not in env
    assert env["HOME"] == str(invocation_job["request"].work_dir / "home")
    assert {name: env[name] for name in LOCAL_ONLY_ENVIRONMENT} == LOCAL_ONLY_ENVIRONMENT


def test_config_files_are_written_like_sagemaker(invocation_job: dict[str, Any]) -> None:
    """Then /opt/ml/input/config holds hyperparameters.json (the request's strings), inputdataconfig.json
    (channels by name) and resourceconfig.json (algo-1 on eth0)."""
    request: TrainingRequest = invocation_job["request"]
    config = request.work_dir / "opt" / "ml" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == dict(request.hyperparameters)
    assert json.loads((config / "inputdataconfig.json").read_text()) == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
    }
    resource = json.loads((config / "resourceconfig.json").read_text())
    assert (resource["current_host"], resource["hosts"], resource["network_interface_name"]) == (
        "algo-1",
        ["algo-1"],
        "eth0",
    )
    assert resource["instance_groups"] == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1"]}
    ]


def test_metrics_are_read_from_stdout_and_stderr(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given one metric printed on stdout and another on stderr, then both are in the final metrics."""
    definitions = [{"Name": "loss", "Regex": r"loss=([0-9.]+);"}, {"Name": "acc", "Regex": r"acc=([0-9.]+);"}]
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"streams.py": BOTH_STREAMS}),
        "streams.py",
        breast_cancer_channel,
        metric_definitions=definitions,
    )

    result = run_training(request)

    assert [(metric["MetricName"], metric["Value"]) for metric in result.final_metrics] == [("loss", 0.9), ("acc", 0.5)]


# ---------------------------------------------------------------- failures


def test_non_zero_exit_without_failure_file_gives_the_toolkits_reason(
    tmp_path: Path, breast_cancer_channel: Path
) -> None:
    """Given a program that exits 3 without writing a failure file, then the job is Failed with the
    ExecuteUserScriptError reason the toolkit writes, naming exit code 3 and the command, and the toolkit itself
    exits 1, as it does for any failure of the program."""
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"exit3.py": EXIT_3}),
        "exit3.py",
        breast_cancer_channel,
        hyperparameters={"epochs": "2"},
    )

    result = run_training(request)

    assert (result.status, result.secondary_status, result.exit_code) == ("Failed", "Failed", 1)
    assert result.failure_reason is not None
    assert re.fullmatch(
        r'AlgorithmError: ExecuteUserScriptError:\nExitCode 3\nErrorMessage ""\n'
        r'Command "\S+/python[0-9.]* -- exit3\.py --epochs 2"',
        result.failure_reason,
    ), result.failure_reason
    assert "about to fail" in log_messages(result)
    assert toolkit_messages(result)[-1] == "Encountered exit_code 1"


def test_failure_reason_is_cut_at_1024_characters(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a 5000-character failure file, then FailureReason keeps its first characters, 1024 in all."""
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"long.py": LONG_FAILURE}), "long.py", breast_cancer_channel
    )

    result = run_training(request)

    assert result.failure_reason is not None
    assert len(result.failure_reason) == FAILURE_REASON_LIMIT == 1024
    assert result.failure_reason == "AlgorithmError: " + "E" * (1024 - len("AlgorithmError: "))


def test_a_missing_program_fails_as_the_toolkit_reports_it(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given SAGEMAKER_PROGRAM names a file the code directory does not have, then the toolkit runs it anyway, the
    interpreter cannot open it, and the job is Failed with the toolkit's reason naming the program; the log says
    which file is missing."""
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"train.py": "print('unused')"}), "trian.py", breast_cancer_channel
    )

    result = run_training(request)

    assert (result.status, result.exit_code) == ("Failed", 1)
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 2\n")
    assert result.failure_reason.endswith(' -- trian.py"')
    assert any("can't open file" in message and "trian.py" in message for message in log_messages(result))


def test_a_program_path_outside_the_code_directory_is_refused_by_the_toolkit(
    tmp_path: Path, breast_cancer_channel: Path
) -> None:
    """Given SAGEMAKER_PROGRAM climbs out of the code directory, then the toolkit refuses to run it: the job is
    Failed with the toolkit's reason, and the program never ran."""
    (tmp_path / "escape.py").write_text("raise SystemExit('ran')\n", encoding="utf-8")
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"train.py": "print('unused')"}), "../escape.py", breast_cancer_channel
    )

    result = run_training(request)

    assert (result.status, result.exit_code) == ("Failed", 1)
    assert result.failure_reason is not None
    assert result.failure_reason.startswith(
        "AlgorithmError: The training entry point '../escape.py' cannot be used because it contains '.' or '..'"
    )
    assert "ran" not in log_messages(result)


def test_a_requirements_file_in_the_code_directory_installs_nothing_into_the_venv(
    tmp_path: Path, breast_cancer_channel: Path
) -> None:
    """Given a code directory with a requirements.txt that this venv does not satisfy, then the toolkit's pip
    install finds no index (the image is this machine's venv: nothing may be installed into it), and the job is
    Failed with the toolkit's InstallRequirementsError before the program runs."""
    code = code_dir_with(
        tmp_path, {"train.py": "print('program ran')", "requirements.txt": "sagepipe-no-such-package==1.0\n"}
    )
    request = make_request(tmp_path, code, "train.py", breast_cancer_channel)

    result = run_training(request)

    assert (result.status, result.exit_code) == ("Failed", 1)
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("AlgorithmError: InstallRequirementsError:\nExitCode 1\n")
    messages = log_messages(result)
    assert any("sagepipe-no-such-package" in message and "from versions: none" in message for message in messages)
    assert "program ran" not in messages


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel holding one empty module `name`."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": "",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in {**files, f"{dist_info}/RECORD": record}.items():
            archive.writestr(path, text)
    return wheel


def test_a_requirement_the_toolkit_could_install_is_not_installed_into_the_venv(
    tmp_path: Path, breast_cancer_channel: Path
) -> None:
    """Given a code directory whose requirements.txt names a wheel shipped beside it, which pip could install
    without any index, then the toolkit's pip install only says what it would install: the venv standing for the
    image is unchanged, and the program runs."""
    code = code_dir_with(tmp_path, {"train.py": "print('program ran')"})
    wheel = write_wheel(code, "sagepipe_probe", "1.0")
    (code / "requirements.txt").write_text(f"./{wheel.name}\n", encoding="utf-8")
    request = make_request(tmp_path, code, "train.py", breast_cancer_channel)

    try:
        result = run_training(request)
        assert result.status == "Completed", result.failure_reason
        messages = log_messages(result)
        assert "Would install sagepipe_probe-1.0" in messages or "Would install sagepipe-probe-1.0" in messages
        assert "program ran" in messages
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.distribution("sagepipe_probe")
    finally:
        # Should the guard ever fail, leave the venv as it was.
        with contextlib.suppress(metadata.PackageNotFoundError):
            metadata.distribution("sagepipe_probe")
            subprocess.run(
                [sys.executable, "-m", "pip", "uninstall", "--yes", "sagepipe_probe"], check=False, timeout=120
            )


# ---------------------------------------------------------------- stopping


def test_max_runtime_exceeded_stops_the_job(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a program that writes a checkpoint then sleeps 30 s, and MaxRuntimeInSeconds 1, then the job is
    Stopped / MaxRuntimeExceeded within seconds of its limit: the toolkit got SIGTERM, and nothing is left running.
    (Whether the program had started within that second depends on the toolkit's start-up.)"""
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"slow.py": SLEEP_AFTER_PARTIAL_MODEL}),
        "slow.py",
        breast_cancer_channel,
        max_runtime_seconds=1,
    )

    started = time.monotonic()
    result = run_training(request)
    elapsed = time.monotonic() - started

    assert elapsed < STOP_DEADLINE_SECONDS
    assert (result.status, result.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    assert result.failure_reason is None
    assert result.exit_code == -signal.SIGTERM
    assert result.model_archive is not None
    assert statuses(result) == ["Starting", "Downloading", "Training", "Stopping", "Uploading", "MaxRuntimeExceeded"]
    assert "Stopping the training job (MaxRuntimeInSeconds (1 s)): sending SIGTERM" in log_messages(result)


def test_a_program_ignoring_sigterm_is_killed_with_the_job(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a running program that ignores SIGTERM, when the job is stopped, then the toolkit ends on SIGTERM and
    the program goes with it (SIGKILL to the job's process group, as a container's processes go with it)."""
    cancel = threading.Event()
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"stubborn.py": IGNORE_SIGTERM}),
        "stubborn.py",
        breast_cancer_channel,
        cancel=cancel,
        stop_grace_seconds=0.5,
    )
    cancel_once_logged(request, "ignoring SIGTERM", cancel)

    result = run_training(request)

    assert (result.status, result.secondary_status, result.exit_code) == ("Stopped", "Stopped", -signal.SIGTERM)
    assert result.model_archive is not None
    pid = int(archive_file(result.model_archive, "pid"))

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert process.poll_until(gone, timeout=STOP_DEADLINE_SECONDS), f"the program (pid {pid}) outlived its job"


def test_cancel_stops_a_running_job_and_keeps_its_model(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a program that writes a checkpoint then sleeps 30 s, when StopTrainingJob sets the job's cancel event
    once the checkpoint is written, then the job is Stopped / Stopped at once, and model.tar.gz holds the
    checkpoint (SageMaker uploads the model directory of a stopped job too)."""
    cancel = threading.Event()
    request = make_request(
        tmp_path,
        code_dir_with(tmp_path, {"slow.py": SLEEP_AFTER_PARTIAL_MODEL}),
        "slow.py",
        breast_cancer_channel,
        cancel=cancel,
    )
    cancel_once_logged(request, "checkpoint written", cancel)

    result = run_training(request)

    assert (result.status, result.secondary_status, result.failure_reason) == ("Stopped", "Stopped", None)
    assert result.training_end_time is not None
    stopping = next(item for item in result.secondary_status_transitions if item["Status"] == "Stopping")
    assert (result.training_end_time - stopping["StartTime"]).total_seconds() < STOP_DEADLINE_SECONDS
    assert statuses(result)[-3:] == ["Stopping", "Uploading", "Stopped"]
    assert result.secondary_status_transitions[-1]["StatusMessage"] == "Training job stopped"
    assert result.model_archive is not None
    assert archive_file(result.model_archive, "partial.bin") == b"checkpoint"


def test_a_job_cancelled_before_it_runs_stops_without_running(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given the cancel event is already set, then the program never runs and nothing is uploaded."""
    cancel = threading.Event()
    cancel.set()
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"dump.py": DUMP_INVOCATION}), "dump.py", breast_cancer_channel, cancel=cancel
    )

    result = run_training(request)

    assert (result.status, result.secondary_status, result.exit_code) == ("Stopped", "Stopped", None)
    assert result.model_archive is None
    assert "Training" not in statuses(result)


# ---------------------------------------------------------------- artifacts


def test_the_model_archive_is_deterministic(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given two jobs whose programs write the same model bytes at different times, then their model.tar.gz
    are byte-identical, with sorted relative names, no timestamps and root ownership."""
    archives = []
    for run in ("first", "second"):
        root = tmp_path / run
        request = make_request(
            root, code_dir_with(root, {"fixed.py": FIXED_MODEL}), "fixed.py", breast_cancer_channel, job_name=run
        )
        result = run_training(request)
        assert result.model_archive is not None
        archives.append(result.model_archive)
        time.sleep(0.05)  # the second run's files get later modification times

    assert hashlib.sha256(archives[0].read_bytes()).digest() == hashlib.sha256(archives[1].read_bytes()).digest()
    members = archive_members(archives[0])
    assert list(members) == ["sub", "sub/config.json", "weights.bin"]
    assert {(member.mtime, member.uid, member.gid) for member in members.values()} == {(0, 0, 0)}
    assert archive_file(archives[0], "weights.bin") == bytes(range(256)) * 64


def test_an_empty_output_data_directory_gives_no_output_archive(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a program that writes nothing to /opt/ml/output/data, then there is no output.tar.gz."""
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"fixed.py": FIXED_MODEL}), "fixed.py", breast_cancer_channel
    )

    result = run_training(request)

    assert result.status == "Completed"
    assert result.output_archive is None


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"metric_definitions": [{"Name": "loss", "Regex": "loss=([0-9.]+"}]}, "invalid Regex"),
        ({"channels": {}}, "do not match InputDataConfig"),
        ({"max_runtime_seconds": 0}, "positive number"),
        ({"image_bin": Path("/nonexistent/bin")}, "entry point `train` is not in /nonexistent/bin"),
    ],
)
def test_malformed_requests_are_rejected_before_anything_runs(
    tmp_path: Path, breast_cancer_channel: Path, changes: dict[str, Any], problem: str
) -> None:
    code_dir = code_dir_with(tmp_path, {"dump.py": DUMP_INVOCATION})
    request = replace(make_request(tmp_path, code_dir, "dump.py", breast_cancer_channel), **changes)
    with pytest.raises(TrainingRequestError, match=problem):
        run_training(request)
    assert not (request.work_dir / "opt").exists()


def test_a_work_dir_is_never_reused(tmp_path: Path, breast_cancer_channel: Path) -> None:
    """Given a work_dir that already ran a job, then a second job there is refused: its stale model or
    failure file would change the outcome."""
    request = make_request(
        tmp_path, code_dir_with(tmp_path, {"fixed.py": FIXED_MODEL}), "fixed.py", breast_cancer_channel
    )
    assert run_training(request).status == "Completed"
    with pytest.raises(TrainingRequestError, match="fresh work_dir"):
        run_training(request)


# ---------------------------------------------------------------- parse_metrics


T0 = datetime(2025, 1, 1, tzinfo=UTC)
LOSS = {"Name": "loss", "Regex": r"loss=([0-9.]+);"}


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_parse_metrics_keeps_the_last_value_and_its_time() -> None:
    lines = [(at(1), "epoch 1 loss=0.9;"), (at(2), "nothing to see"), (at(3), "epoch 2 loss=0.4;"), (at(4), "done")]
    assert parse_metrics(lines, [LOSS]) == ({"MetricName": "loss", "Value": 0.4, "Timestamp": at(3)},)


def test_parse_metrics_applies_every_definition_in_definition_order() -> None:
    definitions = [LOSS, {"Name": "acc", "Regex": r"acc=([0-9.]+)"}, {"Name": "never", "Regex": r"never=(\d+)"}]
    lines = [(at(1), "acc=0.5"), (at(2), "loss=0.7; acc=0.6")]
    assert parse_metrics(lines, definitions) == (
        {"MetricName": "loss", "Value": 0.7, "Timestamp": at(2)},
        {"MetricName": "acc", "Value": 0.6, "Timestamp": at(2)},
    )


@pytest.mark.parametrize("line", ["loss=abc;", "loss=nan;", "loss=1e999;", "loss=;"])
def test_parse_metrics_ignores_captures_that_are_not_finite_numbers(line: str) -> None:
    lines = [(at(1), "loss=0.5;"), (at(2), line)]
    assert parse_metrics(lines, [{"Name": "loss", "Regex": r"loss=([^;]*);"}]) == (
        {"MetricName": "loss", "Value": 0.5, "Timestamp": at(1)},
    )


def test_parse_metrics_ignores_a_regex_without_a_capture_group() -> None:
    assert parse_metrics([(at(1), "loss=0.1;")], [{"Name": "loss", "Regex": r"loss=[0-9.]+;"}]) == ()
