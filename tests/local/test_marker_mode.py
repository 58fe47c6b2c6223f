"""Marker mode on the local runtime: a dataset is a folder, and only its marker starts a run.

The stack is provisioned with DataTriggerMode=marker. Parts of a dataset are uploaded one by one (as a
Spark or Glue job writes them); none starts a run. The `_SUCCESS` marker starts exactly one, which trains on
every part as of the marker, and records the manifest's sha256.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local.core import context
from sagepipe.local.runner import LocalPipeline
from tests.local.conftest import TrainingRepository, read_s3_uri, run_through_events

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 300.0


@pytest.fixture
def stack_parameters() -> dict[str, str]:
    return {"DataTriggerMode": "marker", "DataMarkerName": "_SUCCESS"}


def _halves(training_data: Path) -> tuple[bytes, bytes]:
    header, *rows = training_data.read_text(encoding="utf-8").splitlines()
    middle = len(rows) // 2
    first = "\n".join([header, *rows[:middle]]) + "\n"
    second = "\n".join([header, *rows[middle:]]) + "\n"
    return first.encode(), second.encode()


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_only_the_marker_starts_a_run_on_every_part_as_of_the_marker(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given HEAD pushed, when two parts then `_SUCCESS` are uploaded under a dataset folder, then the parts start
    nothing, the marker starts one run that trains on both parts, and the record holds the marker's key and
    version, the object count and the manifest's sha256; a part written after the marker is not in it."""
    run_through_events(pipeline, commit=repository.head, data=None)
    s3 = pipeline.emulator.client("s3")
    folder = f"{pipeline.data_prefix}churn/2026-11-25/"
    first_half, second_half = _halves(training_data)

    # When: the parts arrive
    marker_before_parts = pipeline.execution_marker()
    parts = {
        f"{folder}part-0001.csv": s3.put_object(
            Bucket=pipeline.data_bucket, Key=f"{folder}part-0001.csv", Body=first_half
        )["VersionId"],
        f"{folder}part-0002.csv": s3.put_object(
            Bucket=pipeline.data_bucket, Key=f"{folder}part-0002.csv", Body=second_half
        )["VersionId"],
    }
    # Then: nothing starts (delivery is synchronous: a started run would already be recorded)
    assert context.current().wait_for_executions(marker_before_parts, 1, timeout=1.0) == []

    # When: the (empty) marker arrives
    key = f"{folder}_SUCCESS"
    marker_version = s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=b"")["VersionId"]
    (arn,) = pipeline.started_since(marker_before_parts)
    run = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)

    # Then: one run on both parts
    assert run.status == "SUCCEEDED", run.cause
    record: dict[str, Any] | None = run.record
    assert record is not None
    assert record["status"] == "SUCCEEDED"
    assert (record["data_key"], record["data_version_id"]) == (key, marker_version)
    assert record["data_object_count"] == 2
    manifest_bytes = read_s3_uri(pipeline, record["data_manifest_uri"])
    assert record["data_manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    manifest = json.loads(manifest_bytes)
    assert {entry["key"]: entry["versionId"] for entry in manifest["objects"]} == parts
    assert manifest["marker"] == {"key": key, "versionId": marker_version}
    staged = s3.list_objects_v2(
        Bucket=pipeline.stack.outputs["ArtifactsBucketName"], Prefix=f"runs/{run.run_id}/input/train/"
    )["Contents"]
    assert sorted(item["Key"].rsplit("/", 1)[-1] for item in staged) == ["part-0001.csv", "part-0002.csv"]

    # When: a part arrives after the marker, then the marker is written again
    after_the_run = pipeline.execution_marker()
    s3.put_object(Bucket=pipeline.data_bucket, Key=f"{folder}part-0003.csv", Body=second_half)
    assert context.current().wait_for_executions(after_the_run, 1, timeout=1.0) == []
    s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=b"")
    (arn,) = pipeline.started_since(after_the_run)
    rerun = pipeline.follow(arn, timeout=RUN_TIMEOUT_SECONDS)

    # Then: the new marker version is a new dataset version, with the late part; the first run's is unchanged
    assert rerun.record is not None
    assert rerun.record["status"] == "SUCCEEDED", rerun.cause
    assert rerun.record["data_object_count"] == 3
    assert rerun.record["data_manifest_sha256"] != record["data_manifest_sha256"]
    assert json.loads(read_s3_uri(pipeline, record["data_manifest_uri"])) == manifest
