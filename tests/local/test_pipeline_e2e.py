"""The pipeline end to end on the local runtime, through the real event path.

Every run here starts the way it starts on AWS: a code push on EventBridge, or an S3 PutObject whose
EventBridge event the data rule matches. The build really checks out the commit and runs buildspec.yml;
the training really runs train.py from the image the build registered.
"""

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from sagepipe.local.runner import LocalPipeline
from tests.local.conftest import (
    Notifications,
    TrainingRepository,
    assert_valid_record,
    read_s3_uri,
    run_through_events,
    states_entered,
)

pytestmark = pytest.mark.e2e

HEX_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAIN_GUARD = 'if __name__ == "__main__":'


def with_code_before_main_guard(source: str, code: str) -> str:
    """train.py with `code` inserted just before its main guard, so it takes effect when SageMaker runs it."""
    assert MAIN_GUARD in source
    return source.replace(MAIN_GUARD, f"{code}\n\n\n{MAIN_GUARD}", 1)


def test_a_data_upload_trains_the_pushed_commit_and_records_everything(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a pushed commit with no image yet, when training data is uploaded, then the run builds the image,
    trains on that exact object version, and the audit record holds real values for every field."""
    skipped, run = run_through_events(pipeline, commit=repository.head, data=training_data)

    # The push alone could not run: no data yet. It says so.
    assert skipped.status == "SUCCEEDED"
    assert skipped.record is not None
    assert skipped.record["status"] == "SKIPPED"
    assert "no training data" in skipped.record["skip_reason"]

    assert run.status == "SUCCEEDED", run.cause
    record = run.record
    assert record is not None
    assert record["status"] == "SUCCEEDED"
    assert record["commit_id"] == repository.head
    assert record["data_key"] == f"datasets/{training_data.name}"
    versions = pipeline.emulator.client("s3").list_object_versions(Bucket=pipeline.data_bucket)["Versions"]
    assert record["data_version_id"] == versions[0]["VersionId"]
    assert HEX_DIGEST.match(record["image_digest"])
    assert record["image_uri"].endswith(f"@{record['image_digest']}")
    assert record["image_built"] is True
    assert record["training_job_name"].startswith(f"sagepipe-{run.run_id[:8]}")
    assert set(record["metrics"]) == {"train:accuracy", "validation:accuracy", "validation:f1", "validation:roc_auc"}
    assert 0.9 < record["metrics"]["validation:accuracy"] <= 1.0
    model = read_s3_uri(pipeline, record["artifact_uri"])
    assert record["artifact_sha256"] == hashlib.sha256(model).hexdigest()
    assert record["artifact_size_bytes"] == len(model)
    with tarfile.open(fileobj=io.BytesIO(model)) as archive:
        assert "model.joblib" in archive.getnames()
    timings = record["timings"]
    assert timings["build_seconds"] > 0
    assert timings["training_seconds"] > 0
    assert timings["total_seconds"] >= timings["build_seconds"] + timings["training_seconds"] - 0.5
    assert record["triggered_by"]
    assert record["trigger_kind"] == "data"


def test_new_data_for_the_same_commit_reuses_the_image_and_trains_again(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, tmp_path: Path
) -> None:
    """Given a commit whose image was built by a first run, when new data arrives, then the second run skips the
    build (same image digest), and trains a new job on the new data version."""
    _, first = run_through_events(pipeline, commit=repository.head, data=training_data)
    more_data = tmp_path / "more.csv"
    # New data: one row fewer (identical bytes would be the same data, and the training cache would answer).
    more_data.write_text(
        "".join(training_data.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8"
    )
    (second,) = run_through_events(pipeline, commit=None, data=more_data)

    assert first.status == second.status == "SUCCEEDED", second.cause
    assert first.record
    assert second.record
    assert "BuildImage" in states_entered(first)
    assert "BuildImage" not in states_entered(second)
    assert second.record["image_built"] is False
    assert second.record["image_digest"] == first.record["image_digest"]
    assert "build_seconds" not in second.record["timings"]
    assert second.record["training_job_name"] != first.record["training_job_name"]
    assert second.record["data_key"] == "datasets/more.csv"
    assert second.record["artifact_sha256"]


def test_a_docs_only_commit_reuses_the_image_with_no_build_and_tags_it_with_the_commit(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a first run that built the image of HEAD's tree, when a commit that changes only the README and docs
    is pushed, then its run starts no CodeBuild build, trains with the same image (by digest), records its own
    commit and the unchanged image tree, and the image now also carries the new commit's tag (immutable tags: the
    tree's and the first commit's stay)."""
    _, first = run_through_events(pipeline, commit=repository.head, data=training_data)
    builds_before = len(pipeline.emulator.client("codebuild").list_builds()["ids"])

    docs = repository.commit("Docs only", {"README.md": "more words\n", "docs/new-page.md": "# new\n"})
    (second,) = run_through_events(pipeline, commit=docs, data=None)

    assert first.status == second.status == "SUCCEEDED", second.cause
    assert first.record
    assert second.record
    assert "BuildImage" in states_entered(first)
    assert "BuildImage" not in states_entered(second)
    assert "TagImageWithCommit" in states_entered(second)
    assert len(pipeline.emulator.client("codebuild").list_builds()["ids"]) == builds_before
    assert second.record["commit_id"] == docs
    assert second.record["image_built"] is False
    assert second.record["image_digest"] == first.record["image_digest"]
    assert second.record["commit_image_tree"] == first.record["commit_image_tree"]
    assert len(second.record["commit_image_tree"]) == 40
    ecr = pipeline.emulator.client("ecr")
    (image,) = ecr.describe_images(
        repositoryName=pipeline.stack.ref("TrainingImageRepository"),
        imageIds=[{"imageDigest": first.record["image_digest"]}],
    )["imageDetails"]
    assert set(image["imageTags"]) == {f"tree-{first.record['commit_image_tree']}", repository.head_of(1), docs}


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_identical_bytes_uploaded_again_end_cached_and_force_trains_anyway(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a SUCCEEDED run, when the same bytes are uploaded again (another key, so another VersionId), then the
    run ends CACHED pointing at the first, with no training job, the same key and its parts in the record; when a
    manual run of that version is forced, then it trains and records that it was forced."""
    _, first = run_through_events(pipeline, commit=repository.head, data=training_data)
    (again,) = run_through_events(pipeline, commit=None, data=training_data, data_key="datasets/copy.csv")

    assert first.status == again.status == "SUCCEEDED", again.cause
    assert first.record
    assert again.record
    assert again.record["status"] == "CACHED"
    assert again.record["cached_from"] == first.run_id
    assert "Train" not in states_entered(again)
    assert "StageTrainingData" not in states_entered(again)
    assert again.record["cache_key"] == first.record["cache_key"]
    assert again.record["cache_key_parts"] == first.record["cache_key_parts"]
    assert again.record["data_version_id"] != first.record["data_version_id"]
    assert again.record["data_sha256"] == hashlib.sha256(training_data.read_bytes()).hexdigest()
    assert again.record["cache_key_parts"]["data_sha256"] == again.record["data_sha256"]
    assert again.record["cache_key_parts"]["image"] == f"tree-{first.record['commit_image_tree']}"
    assert (first.record["cache_decision"], again.record["cache_decision"]) == ("miss", "hit")
    assert (first.record["forced"], again.record["forced"]) == (False, False)
    assert again.record["artifact_sha256"] == first.record["artifact_sha256"]
    assert again.record["model_content_sha256"] == first.record["model_content_sha256"]
    # The cached model went through the gate (no champion: the thresholds alone) and kept the first run's package.
    assert "EvaluateGate" in states_entered(again)
    assert "RegisterModelPackage" not in states_entered(again)
    assert again.record["gate"]["passed"] is True
    assert again.record["model_package_arn"] == first.record["model_package_arn"]
    assert again.record["model_package_reused"] is True
    assert again.record["ledger_sha256"], "a cached record is sealed like any final record"
    assert_valid_record(again.record)
    assert_valid_record(first.record)

    # The same bytes once more (outside the data prefix, so only the manual run starts): a new (commit, data
    # version) pair, whose key is the first run's.
    version = pipeline.emulator.client("s3").put_object(
        Bucket=pipeline.data_bucket, Key="manual/copy.csv", Body=training_data.read_bytes()
    )["VersionId"]
    marker = pipeline.execution_marker()
    pipeline.put_event(
        "sagepipe.manual",
        "Manual Run Requested",
        {
            "commit": repository.head,
            "requestedBy": "e2e",
            "force": True,
            "data": {"bucket": pipeline.data_bucket, "key": "manual/copy.csv", "versionId": version},
        },
    )
    (arn,) = pipeline.started_since(marker)
    forced = pipeline.follow(arn, timeout=300)
    assert forced.record
    assert forced.record["status"] == "SUCCEEDED", forced.cause
    assert "Train" in states_entered(forced)
    assert (forced.record["forced"], forced.record["cache_decision"]) == (True, "forced")
    assert first.run_id in forced.record["cache_reason"]
    assert forced.record["cache_key"] == first.record["cache_key"]
    assert_valid_record(forced.record)


def test_a_code_push_builds_then_trains_on_the_latest_data(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given data already uploaded (that run was skipped: no commit), when a commit is pushed, then the push runs
    the pipeline: build, then training on the latest data version."""
    (waiting,) = run_through_events(pipeline, commit=None, data=training_data)
    assert waiting.record
    assert waiting.record["status"] == "SKIPPED"
    assert "no commit" in waiting.record["skip_reason"]

    commit = repository.commit("Use 150 trees", {"container/NOTES.md": "tuned\n"})
    (run,) = run_through_events(pipeline, commit=commit, data=None)

    assert run.status == "SUCCEEDED", run.cause
    assert run.record
    assert run.record["trigger_kind"] == "code"
    assert run.record["commit_id"] == commit
    assert run.record["data_key"] == f"datasets/{training_data.name}"
    entered = states_entered(run)
    assert entered.index("BuildImage") < entered.index("Train")


def test_training_code_that_raises_fails_the_run_with_its_reason_and_a_notification(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, notifications: Notifications
) -> None:
    """Given a commit whose training script raises, then the run is FAILED at Train with the script's failure
    reason in the record, one failure notification goes out, and the execution ends Failed."""
    broken = with_code_before_main_guard(
        repository.read("container/train.py"),
        # Only inside a training job (TRAINING_JOB_NAME is set): the unit tests in the build still pass, as they
        # do for code that works on a laptop and fails on the real job.
        "_train = train\n\n\ndef train(*args, **kwargs):\n    import os\n\n"
        "    if os.environ.get('TRAINING_JOB_NAME'):\n        raise RuntimeError('the feature store is unreachable')\n"
        "    return _train(*args, **kwargs)",
    )
    commit = repository.commit("Break training", {"container/train.py": broken})

    _, run = run_through_events(pipeline, commit=commit, data=training_data)

    assert run.status == "FAILED"
    assert run.error == "sagepipe.TrainFailed"
    record = run.record
    assert record is not None
    assert record["status"] == "FAILED"
    assert record["failed_stage"] == "Train"
    assert "the feature store is unreachable" in record["failure_reason"]
    assert record["training_job_name"]
    # The push's SKIPPED, then this run's failure, and nothing more
    messages = notifications.received(expected=2)
    assert sorted(m["MessageAttributes"]["status"]["Value"] for m in messages) == ["FAILED", "SKIPPED"]
    failures = [m for m in messages if m["MessageAttributes"]["status"]["Value"] == "FAILED"]
    assert len(failures) == 1
    assert failures[0]["Subject"].startswith("[sagepipe dev] FAILED")
    assert "the feature store is unreachable" in failures[0]["Message"]


def test_a_failing_build_step_fails_the_run_at_the_build(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, notifications: Notifications
) -> None:
    """Given a commit whose training tests fail (buildspec's pre_build step), then no image is pushed, the run is
    FAILED at BuildImage with the failing command in the reason, notified, and the execution ends Failed."""
    commit = repository.commit(
        "Add a failing test", {"container/tests/test_broken.py": "def test_broken():\n    assert 1 == 2\n"}
    )

    _, run = run_through_events(pipeline, commit=commit, data=training_data)

    assert run.status == "FAILED"
    assert run.error == "sagepipe.BuildImageFailed"
    assert run.record
    assert run.record["failed_stage"] == "BuildImage"
    assert "pytest" in run.record["failure_reason"]
    assert "Train" not in states_entered(run)
    images = pipeline.emulator.client("ecr").describe_images(
        repositoryName=pipeline.stack.ref("TrainingImageRepository")
    )
    assert images["imageDetails"] == []
    # The push's SKIPPED, then this run's failure, and nothing more
    messages = notifications.received(expected=2)
    assert sorted(m["MessageAttributes"]["status"]["Value"] for m in messages) == ["FAILED", "SKIPPED"]
    failures = [m for m in messages if m["MessageAttributes"]["status"]["Value"] == "FAILED"]
    assert len(failures) == 1
    assert "BuildImage" in failures[0]["Subject"]


@pytest.mark.parametrize("stack_parameters", [{"TrainingMaxRuntimeSeconds": "2"}])
def test_a_run_longer_than_its_max_runtime_is_stopped_recorded_and_notified(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, notifications: Notifications
) -> None:
    """Given training that runs past MaxRuntimeInSeconds, then SageMaker's stop ends the job Stopped, the run is
    recorded STOPPED at Train and notified as such, and the execution ends Failed."""
    slow = with_code_before_main_guard(
        repository.read("container/train.py"),
        "_train = train\n\n\ndef train(*args, **kwargs):\n    import os\n    import time\n\n"
        "    if os.environ.get('TRAINING_JOB_NAME'):\n        time.sleep(60)\n    return _train(*args, **kwargs)",
    )
    commit = repository.commit("Train for a minute", {"container/train.py": slow})

    _, run = run_through_events(pipeline, commit=commit, data=training_data)

    assert run.status == "FAILED"
    assert run.error == "sagepipe.TrainStopped"
    assert run.record
    assert run.record["status"] == "STOPPED"
    assert run.record["failed_stage"] == "Train"
    # The push's SKIPPED, then this run's stop, and nothing more
    messages = notifications.received(expected=2)
    assert sorted(m["MessageAttributes"]["status"]["Value"] for m in messages) == ["SKIPPED", "STOPPED"]
    stopped = [m for m in messages if m["MessageAttributes"]["status"]["Value"] == "STOPPED"]
    assert len(stopped) == 1
    assert "Training logs:" in stopped[0]["Message"]
