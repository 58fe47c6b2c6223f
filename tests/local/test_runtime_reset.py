"""Emulator.reset() forgets what every service keeps in the runtime context, as a fresh runtime has nothing."""

from __future__ import annotations

import pytest

from sagepipe.local.codebuild.adapter import LocalBuilds
from sagepipe.local.codebuild.provisioning import BuildProjectSpec, build_projects
from sagepipe.local.core import context
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.lambda_.runtime import local_functions
from sagepipe.local.s3 import copy_limit
from sagepipe.local.sagemaker.adapter import LocalTrainingJobs
from sagepipe.local.stepfunctions import faults, task_clients
from sagepipe.local.stepfunctions.faults import Fault
from sagepipe.local.stepfunctions.sync_task import LocalJob

pytestmark = pytest.mark.e2e


def test_reset_clears_job_registries_caches_faults_the_clock_and_limits(emulator: Emulator) -> None:
    # Given every kind of state a test or a run leaves in the runtime
    runtime = context.current()
    runtime.state(LocalBuilds).add(LocalJob("train-image:1"))
    runtime.state(LocalTrainingJobs).add(LocalJob("sagepipe-run-1"))
    build_projects()["train-image"] = BuildProjectSpec("train-image", {}, 60)
    client = task_clients.boto_client_for("us-east-1", "dynamodb", None)
    controls = faults.controls()
    controls.faults.inject(Fault("sns:publish", error="Throttled"))
    controls.clock.retry_scale = 0.001
    copy_limit.settings().copy_object_max_bytes = 1024
    log_stream = local_functions().log

    # When the emulator is reset
    emulator.reset()

    # Then none of it is left: the registries are empty, the cache builds a new client, no fault is armed, the
    # clock waits the definition's own intervals and CopyObject has S3's limit again
    assert runtime.state(LocalBuilds).get("train-image:1") is None
    assert runtime.state(LocalTrainingJobs).get("sagepipe-run-1") is None
    assert build_projects() == {}
    assert task_clients.boto_client_for("us-east-1", "dynamodb", None) is not client
    assert faults.controls() is not controls
    assert (
        faults.controls().faults.take(state="Notify", integration="sns:publish", retry_count=0, after_call=False)
        is None
    )
    assert faults.controls().clock.retry_scale == 1.0
    assert copy_limit.settings().copy_object_max_bytes == copy_limit.S3_COPY_OBJECT_MAX_BYTES
    assert local_functions().log is not log_stream
