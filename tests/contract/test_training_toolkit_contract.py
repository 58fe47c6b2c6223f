"""Contract: the SM_* environment the local SageMaker gives the training program is the toolkit's own.

The image runs the sagemaker-training toolkit (container/requirements-toolkit.txt pins 5.1.4), whose `train` entry
point derives SM_* from /opt/ml and exports `Environment().to_env_vars()`. The local runtime derives the same
variables in sagepipe/local/sagemaker/training.py; this test builds a job's /opt/ml with it, then asks the pinned
toolkit itself (in a subprocess, with SAGEMAKER_BASE_DIR pointing at that /opt/ml: environment.py reads it when it
is imported) for its variables, and compares every one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sagepipe.local.sagemaker import training

TOOLKIT_ENVIRONMENT = "; ".join(
    [
        "import json",
        "from sagemaker_training import environment",
        "print(json.dumps(environment.Environment().to_env_vars()))",
    ]
)


def test_the_local_sm_variables_are_the_toolkit_s(tmp_path: Path) -> None:
    # Given a job with hyperparameters (one a toolkit-reserved sagemaker_ one) and a channel, laid out in /opt/ml
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('training')\n", encoding="utf-8")
    channel = tmp_path / "channel"
    channel.mkdir()
    (channel / "train.csv").write_text("x,target\n1,0\n", encoding="utf-8")
    request = training.TrainingRequest(
        job_name="sagepipe-run-1",
        code_dir=code,
        program="train.py",
        hyperparameters={"n_estimators": "200", "learning_rate": "0.1", "sagemaker_region": '"us-east-1"'},
        channels={"train": channel},
        input_data_config=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3Uri": "s3://data/datasets/", "S3DataType": "S3Prefix"}},
            }
        ],
        resource_config={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        max_runtime_seconds=60,
        metric_definitions=[],
        work_dir=tmp_path / "work",
        log_path=tmp_path / "training.log",
    )
    layout = training._Layout(request.work_dir / "opt" / "ml")
    training._prepare(request, layout)
    ours = training._invocation(request, layout).sm_variables

    # When the toolkit reads the same /opt/ml
    asked = subprocess.run(
        [sys.executable, "-c", TOOLKIT_ENVIRONMENT],
        env={
            "PATH": os.environ.get("PATH", os.defpath),
            "SAGEMAKER_BASE_DIR": str(layout.root),
            "SAGEMAKER_PROGRAM": "train.py",
            "TRAINING_JOB_NAME": request.job_name,
            "CURRENT_HOST": training.CURRENT_HOST,
        },
        cwd=layout.code,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs: dict[str, str] = json.loads(asked.stdout.strip().splitlines()[-1])

    # Then every variable is the same, SM_TRAINING_ENV (the whole environment as JSON) included
    assert set(ours) == set(theirs), (
        f"only ours: {sorted(set(ours) - set(theirs))}; only the toolkit's: {sorted(set(theirs) - set(ours))}"
    )
    different = {name: (ours[name], theirs[name]) for name in ours if ours[name] != theirs[name]}
    assert different == {}, f"SM_* variables that differ from the toolkit's (ours, toolkit's): {different}"
