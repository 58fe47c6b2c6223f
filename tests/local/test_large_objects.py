"""Objects over S3's 5 GiB CopyObject limit are staged in parts, end to end on the local runtime.

S3 copies an object of up to 5 GiB in one CopyObject request and refuses a larger source with InvalidRequest
(Amazon S3 API Reference, CopyObject). The local runtime enforces that limit (sagepipe/local/s3/copy_limit.py); a test
cannot write 5 GiB, so these tests lower the runtime's limit to 1 KiB, which makes the ~120 KB training CSV "over
the limit". The state machine is the deployed one: its own threshold stays at 5 GiB.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from sagepipe.local.core.emulator import ACCOUNT_ID
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.s3 import copy_limit
from sagepipe.local.s3.events import encode_key
from sagepipe.local.stepfunctions.aws_sdk import sdk_error_name
from sagepipe.manual import request_manual_run
from tests.local.conftest import TrainingRepository, assert_valid_record, run_through_events, states_entered

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0
LOWERED_LIMIT = 1024
OVER_5_GIB = 6 * 1024**3


@pytest.fixture
def lowered_copy_limit(pipeline: LocalPipeline, training_data: Path) -> Iterator[int]:
    """CopyObject refuses sources over 1 KiB for this test (the emulator's reset restores AWS's limit too)."""
    runtime = copy_limit.settings()
    assert training_data.stat().st_size > LOWERED_LIMIT
    runtime.copy_object_max_bytes = LOWERED_LIMIT
    try:
        yield LOWERED_LIMIT
    finally:
        runtime.copy_object_max_bytes = copy_limit.S3_COPY_OBJECT_MAX_BYTES


def _staged(pipeline: LocalPipeline, run: RunResult, name: str) -> tuple[bytes, dict[str, str]]:
    """The staged training file's bytes, and how it is encrypted."""
    s3 = pipeline.emulator.client("s3")
    response = s3.get_object(
        Bucket=pipeline.stack.outputs["ArtifactsBucketName"], Key=f"runs/{run.run_id}/input/train/{name}"
    )
    encryption = {"algorithm": response["ServerSideEncryption"], "key": response.get("SSEKMSKeyId", "")}
    return response["Body"].read(), encryption


def _assert_trained_on_the_copy_in_parts(
    pipeline: LocalPipeline, run: RunResult, training_data: Path, name: str
) -> None:
    assert run.status == "SUCCEEDED", f"{run.error}: {run.cause}"
    entered = states_entered(run)
    assert "StageTrainingDataInParts" in entered
    assert "StageTrainingData" not in entered, "the one-request copy was tried"
    assert run.record is not None
    assert run.record["status"] == "SUCCEEDED"
    assert_valid_record(run.record)
    staged, encryption = _staged(pipeline, run, name)
    assert staged == training_data.read_bytes(), "the run must train on exactly the data version"
    assert encryption == {"algorithm": "aws:kms", "key": pipeline.stack.attribute("PipelineKey", "Arn")}


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_an_upload_s3_reports_over_5_gib_is_staged_in_parts_and_trains(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, lowered_copy_limit: int
) -> None:
    """Given the training CSV in the data bucket, over the (lowered) CopyObject limit, and S3's Object Created
    event for that version saying it is 6 GiB (what S3 reports for a 6 GiB upload; the bytes behind it are the
    CSV), when the commit is pushed, then the run stages the version in parts, byte for byte and encrypted with
    the pipeline key, and trains on it."""
    s3 = pipeline.emulator.client("s3")
    key = f"{pipeline.data_prefix}large/{training_data.name}"
    # The real upload's event starts a run that waits for a commit (SKIPPED); so does the 6 GiB event after it.
    # The first run ends before the second event is sent: the latest-data pointer is the last one written.
    marker = pipeline.execution_marker()
    version = s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=training_data.read_bytes())["VersionId"]
    waiting = [pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS) for arn in pipeline.started_since(marker, 1)]
    marker = pipeline.execution_marker()
    detail = {
        "version": "0",
        "bucket": {"name": pipeline.data_bucket},
        "object": {
            "key": encode_key(key),
            "size": OVER_5_GIB,
            "etag": "0" * 32 + "-12",
            "version-id": version,
            "sequencer": "00",
        },
        "request-id": "LARGE-UPLOAD",
        "requester": ACCOUNT_ID,
        "source-ip-address": "203.0.113.7",
        "reason": "CompleteMultipartUpload",
    }
    pipeline.put_event("aws.s3", "Object Created", detail, [f"arn:aws:s3:::{pipeline.data_bucket}"])
    waiting += [pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS) for arn in pipeline.started_since(marker, 1)]
    assert [(run.record or {}).get("status") for run in waiting] == ["SKIPPED", "SKIPPED"]

    (run,) = run_through_events(pipeline, commit=repository.head, data=None)

    _assert_trained_on_the_copy_in_parts(pipeline, run, training_data, training_data.name)
    assert run.record is not None
    assert (run.record["data_key"], run.record["data_version_id"]) == (key, version)
    assert run.record["data_size_bytes"] == OVER_5_GIB


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_a_manual_run_names_no_size_so_its_version_is_staged_in_parts(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, lowered_copy_limit: int
) -> None:
    """Given a pushed commit and a version over the (lowered) CopyObject limit outside the data prefix (its upload
    starts nothing), when `sagepipe run` requests a run of the two, then the run (whose size the workflow does not
    know) stages the version in parts and trains on it."""
    run_through_events(pipeline, commit=repository.head, data=None)
    s3 = pipeline.emulator.client("s3")
    key = f"manual/{training_data.name}"
    version = s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=training_data.read_bytes())["VersionId"]

    marker = pipeline.execution_marker()
    request_manual_run(
        pipeline.emulator.client("events"),
        pipeline.emulator.client("sts"),
        s3,
        commit=repository.head,
        data_uri=f"s3://{pipeline.data_bucket}/{key}?versionId={version}",
        reason="a version too large to copy in one request",
    )
    (arn,) = pipeline.started_since(marker)
    run = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)

    _assert_trained_on_the_copy_in_parts(pipeline, run, training_data, training_data.name)
    assert run.record is not None
    assert "data_size_bytes" not in run.record


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_the_one_request_copy_fails_as_on_aws_for_a_source_over_the_limit(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, lowered_copy_limit: int
) -> None:
    """Given the lowered CopyObject limit and the state machine's threshold unchanged (5 GiB), when the CSV is
    uploaded (S3 reports its real size, under 5 GiB), then StageTrainingData's CopyObject is refused with S3's
    InvalidRequest and the run fails there: the local runtime enforces the limit on the aws-sdk task, so a
    version over it can only be staged through the copy in parts."""
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    assert run.status == "FAILED"
    assert run.error == "sagepipe.StageTrainingDataFailed"
    assert "StageTrainingDataInParts" not in states_entered(run)
    record = run.record
    assert record is not None
    assert (record["status"], record["failed_stage"]) == ("FAILED", "StageTrainingData")
    assert record["error"] == sdk_error_name("s3", "InvalidRequest")
    message = f"The specified copy source is larger than the maximum allowable size for a copy source: {LOWERED_LIMIT}"
    assert message in record["cause"]
    assert_valid_record(record)
