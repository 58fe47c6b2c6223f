"""docs/audit-record.schema.json against real run records of the local runtime: each terminal status, and
the smallest record a failure can leave."""

import copy
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from common.audit_digests import LEDGER_FIELDS
from sagepipe.local.runner import LocalPipeline
from sagepipe.local.stepfunctions import faults
from sagepipe.local.stepfunctions.faults import Fault
from tests.local.conftest import AUDIT_RECORD_SCHEMA, TrainingRepository, assert_valid_record, run_through_events

pytestmark = pytest.mark.e2e


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(AUDIT_RECORD_SCHEMA)


def test_real_records_of_every_status_follow_the_schema(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path, tmp_path: Path
) -> None:
    """Given runs that end SKIPPED (a push before any data), SUCCEEDED, DUPLICATE (the same pair again, by
    manual request), FAILED at Train (data without the target column) and FAILED at NormaliseTrigger (the
    smallest record: nothing about the run is known), then every record validates against the schema."""
    skipped, succeeded = run_through_events(pipeline, commit=repository.head, data=training_data)
    marker = pipeline.execution_marker()
    assert succeeded.record is not None
    pipeline.put_event(
        "sagepipe.manual",
        "Manual Run Requested",
        {
            "commit": repository.head,
            "requestedBy": "schema-test",
            "reason": "the same pair again",
            "data": {
                "bucket": pipeline.data_bucket,
                "key": succeeded.record["data_key"],
                "versionId": succeeded.record["data_version_id"],
            },
        },
    )
    duplicate = pipeline.follow(pipeline.started_since(marker)[0], timeout=120)
    header, _, rows = training_data.read_text(encoding="utf-8").partition("\n")
    no_target = tmp_path / "no-target.csv"
    no_target.write_text(header.removesuffix(",target") + ",label\n" + rows, encoding="utf-8")
    (failed_at_train,) = run_through_events(pipeline, commit=None, data=no_target)
    faults.controls().faults.inject(Fault("lambda:invoke", error="ResourceNotFoundException", state="NormaliseTrigger"))
    (failed_first,) = run_through_events(pipeline, commit=None, data=training_data)

    records = {
        "SKIPPED": skipped.record,
        "SUCCEEDED": succeeded.record,
        "DUPLICATE": duplicate.record,
        "FAILED at Train": failed_at_train.record,
        "FAILED at NormaliseTrigger": failed_first.record,
    }
    for name, record in records.items():
        assert record is not None, name
        assert record["schema_version"] == 2
        assert_valid_record(record)
        assert all(field in record for field in LEDGER_FIELDS), f"{name} is not sealed"
    assert records["FAILED at Train"]["failed_stage"] == "Train"  # type: ignore[index]
    assert records["FAILED at NormaliseTrigger"]["failed_stage"] == "NormaliseTrigger"  # type: ignore[index]
    assert records["DUPLICATE"]["trigger_reason"] == "the same pair again"  # type: ignore[index]


REJECTED_CHANGES = {
    "missing": (lambda record: record.pop("artifact_sha256"), "'artifact_sha256' is a required property"),
    "short-commit": (lambda record: record.update(commit_id="abc1234"), "does not match"),
    "unknown-status": (lambda record: record.update(status="DONE"), "is not one of"),
    "undocumented-field": (lambda record: record.update(surprise=1), "Additional properties"),
    "other-version": (lambda record: record.update(schema_version=3), r"3 is not one of \[1, 2\]"),
    "half-a-seal": (lambda record: record.pop("ledger_sha256"), "'ledger_sha256' is a dependency of 'ledger_uri'"),
    "unsealable-digest": (lambda record: record.update(ledger_sha256="not-hex"), "does not match"),
    "schema-2-fields-in-a-schema-1-record": (lambda record: record.update(schema_version=1), "should not be valid"),
    "no-content-digest": (lambda record: record.pop("model_content_sha256"), "'model_content_sha256' is a required"),
    "registered-without-its-gate": (lambda record: record.pop("gate"), "'gate' is a required property"),
    "reused-outside-a-cached-run": (
        lambda record: record.update(model_package_reused=True),
        "'CACHED' was expected",
    ),
    "rejected-yet-registered": (
        lambda record: record.update(status="REJECTED", rejection_reason="worse than the champion"),
        "should not be valid",
    ),
}


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_the_schema_rejects_what_a_record_must_not_be(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a real SUCCEEDED record changed in one way at a time, then the schema rejects each, saying why."""
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)
    assert run.record is not None
    assert_valid_record(run.record)
    for change, complaint in REJECTED_CHANGES.values():
        record = copy.deepcopy(run.record)
        change(record)
        with pytest.raises(AssertionError, match=complaint):
            assert_valid_record(record)


SCHEMA_2_ONLY = (
    "instance_count",
    "volume_size_gb",
    "image_build_id",
    "artifact_version_id",
    "model_content_sha256",
    *LEDGER_FIELDS,
)


@pytest.mark.usefixtures("image_of_head")  # the build is not the subject
def test_a_record_written_before_schema_2_is_still_valid(
    pipeline: LocalPipeline, repository: TrainingRepository, training_data: Path
) -> None:
    """Given a real SUCCEEDED record as schema 1 wrote it (without the fields schema 2 added), then the schema
    accepts it: records in tables deployed before the change stay valid (docs/audit-record.md, migration notes)."""
    _, run = run_through_events(pipeline, commit=repository.head, data=training_data)
    assert run.record is not None
    old = {name: value for name, value in run.record.items() if name not in SCHEMA_2_ONLY} | {"schema_version": 1}
    assert_valid_record(old)
