"""Contract: the pinned training toolkit exports every SM_* variable container/train.py reads, pointing into the job.

The local SageMaker no longer derives SM_* itself: it runs the image's own entry point, the sagemaker-training
toolkit's `train` (container/requirements-toolkit.txt pins 5.1.4, and so does the dev venv), with
SAGEMAKER_BASE_DIR at the job's /opt/ml. What remains to guard is the other side of the contract: the variables
train.py reads, with its SageMaker-path fallbacks that would hide a renamed variable on SageMaker itself. This test
runs a local job, in the pipeline's image, whose program records the environment the toolkit gave it, and checks
train.py's reading of it: its paths are the job's /opt/ml tree and SM_HPS gives the job's hyperparameters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import train  # container/train.py
from sagepipe.local.images import image_environment
from sagepipe.local.sagemaker.training import TrainingRequest, run_training

REPO = Path(__file__).resolve().parents[2]
RECORD_ENVIRONMENT = """
import json, os
with open(os.path.join(os.environ["SM_MODEL_DIR"], "environment.json"), "w") as handle:
    json.dump(dict(os.environ), handle)
"""


def variables_train_py_reads() -> set[str]:
    return set(re.findall(r"""["'](SM_[A-Z0-9_]+)["']""", (REPO / "container" / "train.py").read_text("utf-8")))


def test_the_toolkit_exports_what_train_py_reads(tmp_path: Path) -> None:
    # Given train.py's SM_* variables, and a job in the pipeline's image whose program records its environment
    reads = variables_train_py_reads()
    assert reads >= {"SM_CHANNEL_TRAIN", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_OUTPUT_DIR", "SM_HPS"}
    code = tmp_path / "code"
    code.mkdir()
    (code / "record.py").write_text(RECORD_ENVIRONMENT, encoding="utf-8")
    channel = tmp_path / "channel"
    channel.mkdir()
    (channel / "train.csv").write_text("x,target\n1,0\n", encoding="utf-8")
    dockerfile = (REPO / "container" / "Dockerfile").read_text(encoding="utf-8")
    request = TrainingRequest(
        job_name="sagepipe-contract-1",
        code_dir=code,
        image_environment={**image_environment(dockerfile), "SAGEMAKER_PROGRAM": "record.py"},
        hyperparameters={"n_estimators": "200", "learning_rate": "0.1", "sagemaker_region": '"us-east-1"'},
        channels={"train": channel},
        input_data_config=[{"ChannelName": "train", "ContentType": "text/csv"}],
        resource_config={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        max_runtime_seconds=120,
        metric_definitions=[],
        work_dir=tmp_path / "work",
        log_path=tmp_path / "training.log",
    )

    # When the toolkit runs it
    result = run_training(request)
    assert result.status == "Completed", result.failure_reason
    opt_ml = request.work_dir / "opt" / "ml"
    environment: dict[str, str] = json.loads((opt_ml / "model" / "environment.json").read_text(encoding="utf-8"))

    # Then every variable train.py reads is set, and train.py finds the job's /opt/ml and hyperparameters with them
    missing = sorted(reads - set(environment))
    assert missing == [], f"train.py reads SM_* variables the pinned toolkit does not export: {missing}"
    assert train.resolve_paths(environment) == train.Paths(
        train_channel=opt_ml / "input" / "data" / "train",
        model_dir=opt_ml / "model",
        output_data_dir=opt_ml / "output" / "data",
        output_dir=opt_ml / "output",
        checkpoint_dir=opt_ml / "checkpoints",
    )
    assert train.parse_hyperparameters([], environment["SM_HPS"]) == train.Hyperparameters(
        n_estimators=200, learning_rate=0.1
    )
