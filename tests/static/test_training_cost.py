"""Spot training, checkpoints and warm pools in the template and the state machine: off by default, wired to
SageMaker's own fields, checked at deploy time, and the checkpoints confined to the run's prefix."""

from __future__ import annotations

import json
from typing import Any

from sagepipe.template import PROJECT_ROOT, load_template, translate

DEFINITION = json.loads((PROJECT_ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))


def test_spot_and_warm_pools_are_off_by_default_within_sagemakers_ranges() -> None:
    """Given the template, then Spot is off, the warm pool keeps nothing, and each number stays within what
    botocore's SageMaker model allows (KeepAlivePeriodInSeconds 0..21600; MaxWaitTimeInSeconds >= 1; the runtime's
    28 days)."""
    parameters = load_template()["Parameters"]
    assert parameters["EnableManagedSpotTraining"]["Default"] == "false"
    assert parameters["EnableManagedSpotTraining"]["AllowedValues"] == ["false", "true"]
    assert (parameters["KeepAlivePeriodInSeconds"]["Default"], parameters["KeepAlivePeriodInSeconds"]["MinValue"]) == (
        0,
        0,
    )
    assert parameters["KeepAlivePeriodInSeconds"]["MaxValue"] == 21600
    assert parameters["MaxWaitTimeInSeconds"]["MinValue"] == 1
    assert parameters["MaxWaitTimeInSeconds"]["MaxValue"] == parameters["TrainingMaxRuntimeSeconds"]["MaxValue"]
    # The default wait is no shorter than the default runtime, so turning Spot on alone deploys.
    assert parameters["MaxWaitTimeInSeconds"]["Default"] >= parameters["TrainingMaxRuntimeSeconds"]["Default"]


def test_the_deploy_time_check_sees_the_settings_it_compares() -> None:
    """Given the translated template, then the settings check is a custom resource served by its own function, and
    its properties are exactly the parameters it compares."""
    resources = translate(load_template())["Resources"]
    check = resources["TrainingSettingsCheck"]
    assert check["Type"] == "Custom::TrainingSettingsCheck"
    assert check["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["CheckSettingsFunction", "Arn"]}
    assert {
        name: value for name, value in check["Properties"].items() if name not in {"ServiceToken", "ServiceTimeout"}
    } == {
        "EnableManagedSpotTraining": {"Ref": "EnableManagedSpotTraining"},
        "MaxWaitTimeInSeconds": {"Ref": "MaxWaitTimeInSeconds"},
        "TrainingMaxRuntimeSeconds": {"Ref": "TrainingMaxRuntimeSeconds"},
    }
    assert resources["CheckSettingsFunction"]["Properties"]["Handler"] == "check_settings.app.lambda_handler"


def _train_arguments() -> dict[str, Any]:
    arguments: dict[str, Any] = DEFINITION["States"]["Train"]["Arguments"]
    return arguments


def test_train_keeps_checkpoints_under_the_run_and_sends_spot_only_with_its_wait() -> None:
    """Given the Train state, then CheckpointConfig points under the run's own prefix, MaxWaitTimeInSeconds is sent
    only with Spot, and the warm pool only when its period is above 0."""
    arguments = _train_arguments()
    assert arguments["CheckpointConfig"] == {
        "S3Uri": "{% 's3://${ArtifactsBucketName}/runs/' & $states.context.Execution.Name & '/checkpoints/' %}"
    }
    assert arguments["EnableManagedSpotTraining"] == "{% $run.training.managedSpot %}"
    assert (
        "$run.training.managedSpot ? {'MaxWaitTimeInSeconds': $run.training.maxWaitSeconds} : {}"
        in (arguments["StoppingCondition"])
    )
    assert "$run.training.keepAliveSeconds > 0 ? {'KeepAlivePeriodInSeconds'" in arguments["ResourceConfig"]


def test_the_training_role_may_keep_checkpoints_only_under_runs_checkpoints() -> None:
    """Given the SageMaker execution role, then it may write, read and list checkpoints under runs/*/checkpoints/
    and nothing more of the bucket than before."""
    role = translate(load_template())["Resources"]["SageMakerExecutionRole"]["Properties"]
    statements = {
        statement["Sid"]: statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    }
    keep = statements["KeepCheckpoints"]
    assert sorted(keep["Action"]) == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert keep["Resource"] == {"Fn::Sub": "${ArtifactsBucket.Arn}/runs/*/checkpoints/*"}
    listing = statements["ListCheckpoints"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "runs/*/checkpoints/*"}}
