"""SageMaker: `sagemaker:createTrainingJob.sync` really trains, on this machine, under SageMaker's contract.

AWS
    SageMaker starts an instance, pulls the training image, downloads each S3 channel into /opt/ml/input/data,
    and the image's sagemaker-training toolkit runs SAGEMAKER_PROGRAM; the job stops at MaxRuntimeInSeconds,
    a failure file becomes FailureReason, and /opt/ml/model is uploaded as model.tar.gz.
Locally
    adapter.py records the job in moto's SageMaker and runs it on a thread: the image is the one the local
    build pushed (sagepipe.local.images), channels come from the emulator's S3, and training.py does the
    platform's part (the /opt/ml layout and config files, the container's environment, MaxRuntimeInSeconds,
    MetricDefinitions, FailureReason from the failure file, the archives) around the image's own part: the
    toolkit's `train` entry point, run with SAGEMAKER_BASE_DIR at the job's /opt/ml, runs SAGEMAKER_PROGRAM.
How it differs
    A process group with this machine's Python (the venv pins the image's packages, the toolkit included), no
    network isolation, no instance; local-only variables (no cluster DNS wait, no instance metadata, no
    installs into the venv); only File mode and S3Prefix channels. After a runtime's first job, the entry
    point's process, and then the program it starts, are forked from a warm-start server that has imported the
    toolkit's dependencies and the program's (sagepipe.local.warm_start, a shared module), where a
    container would start a fresh interpreter for each: about two seconds less per job. The program's `python`
    is then the server's launcher (sagepipe/local/warm_python.py), which the toolkit names in an
    ExecuteUserScriptError's command.

The model registry
    AWS: model package groups hold numbered versions with an approval status; a status change is sent to
    EventBridge as "SageMaker Model Package State Change". Locally: moto's groups and versions, with registry.py
    closing the gaps (a group named by ARN, ClientToken, SecurityConfig, merged metadata on update, the caller as
    CreatedBy / LastModifiedBy) and putting the state change event on the default bus; provisioning.py creates
    the stack's AWS::SageMaker::ModelPackageGroup. It differs in that the event is put while the request is
    served, once per change, and every caller is the same identity.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from sagepipe.local.sagemaker import adapter, registry

    adapter.install()
    registry.install()


def task() -> Any:
    """The Step Functions task class of `sagemaker:*` resources (wired by sagepipe.local.services)."""
    from sagepipe.local.sagemaker.adapter import SageMakerTask

    return SageMakerTask()
