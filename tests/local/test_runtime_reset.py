"""Emulator.reset() forgets what every service keeps in the runtime context, as a fresh runtime has nothing."""

from __future__ import annotations

from typing import Any

import pytest

from sagepipe.local.codebuild.adapter import LocalBuilds
from sagepipe.local.codebuild.provisioning import BuildProjectSpec, build_projects
from sagepipe.local.core import context
from sagepipe.local.core.emulator import Emulator
from sagepipe.local.lambda_.runtime import local_functions
from sagepipe.local.provisioner import provision
from sagepipe.local.s3 import copy_limit
from sagepipe.local.sagemaker.adapter import LocalTrainingJobs
from sagepipe.local.stepfunctions import faults, program_cache, task_clients
from sagepipe.local.stepfunctions.faults import Fault
from sagepipe.local.stepfunctions.sync_task import LocalJob
from sagepipe.template import PROJECT_ROOT

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


def test_a_stack_provisioned_again_after_a_reset_has_the_same_definition_which_is_parsed_once(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline key's ARN is in the definition; a new key id at every provisioning would make every test
    parse the definition again (about a second of ANTLR)."""
    # Given the stack provisioned into a reset emulator, and every parse of a definition counted
    parses: list[str] = []
    original_parse = program_cache._parse

    def counted_parse(definition: str) -> Any:
        parses.append(definition)
        return original_parse(definition)

    monkeypatch.setattr(program_cache, "_parse", counted_parse)
    emulator.reset()
    first = provision(emulator, repository=PROJECT_ROOT)
    parses.clear()

    # When it is provisioned again after another reset
    emulator.reset()
    second = provision(emulator, repository=PROJECT_ROOT)

    # Then its key has the same id, so its definition is the same text, which was not parsed again
    assert second.ref("PipelineKey") == first.ref("PipelineKey")
    sfn = emulator.client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=second.outputs["PipelineStateMachineArn"])["definition"]
    assert second.attribute("PipelineKey", "Arn") in definition
    assert parses == [], "the same definition was parsed again"


def test_keys_created_next_to_the_stack_s_key_and_after_it_get_ids_of_their_own(emulator: Emulator) -> None:
    """The seed that keeps the stack's key id stable must never hand out an id already taken, nor make the ids
    moto draws afterwards repeat from one reset to the next."""
    # Given a stack provisioned into a reset emulator, then a key created after it, twice over
    kms = emulator.client("kms")
    drawn_after: list[str] = []
    stack_keys: list[str] = []
    for _ in range(2):
        emulator.reset()
        stack_keys.append(provision(emulator, repository=PROJECT_ROOT).ref("PipelineKey"))
        drawn_after.append(kms.create_key(Description="made after the stack")["KeyMetadata"]["KeyId"])

    # When a second stack is provisioned into the same account, without a reset
    other = provision(emulator, stack_name="sagepipe-other", repository=PROJECT_ROOT)

    # Then the ids drawn after provisioning differ between the resets, and the second stack's key is a new key
    assert stack_keys[0] == stack_keys[1]
    assert drawn_after[0] != drawn_after[1], "moto's ids after the seeded key repeat from one reset to the next"
    ids = [key["KeyId"] for key in kms.list_keys()["Keys"]]
    assert len(ids) == len(set(ids)) == 3
    assert other.ref("PipelineKey") not in (stack_keys[1], drawn_after[1])
