"""The trigger normaliser: every event becomes one run input or a logged reason to ignore it."""

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from normalise_trigger.models import NormaliseRequest, Settings
from normalise_trigger.trigger import RECORD_SCHEMA_VERSION, normalise
from sagepipe.template import PROJECT_ROOT

COMMIT = "3e5b0c1f4f1b6f7a9d2c8e0b1a3d5f7c9e1b3d5f"


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "dev",
        "code_repository": "sagepipe-training",
        "code_branch": "main",
        "data_bucket_name": "sagepipe-data-example",
        "data_prefix": "datasets/",
        "training_instance_type": "ml.m5.large",
        "training_max_runtime_seconds": 3600,
        "training_hyperparameters": '{"n_estimators": 200, "max_depth": "3", "warm_start": true}',
    }
    return Settings(**(values | overrides))


def _sample(name: str) -> dict[str, Any]:
    return json.loads((PROJECT_ROOT / "events" / name).read_text(encoding="utf-8"))


def _request(event: dict[str, Any]) -> NormaliseRequest:
    return NormaliseRequest.model_validate(
        {
            "event": event,
            "runId": "run-1",
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:p:run-1",
            "startedAt": "2026-11-24T09:15:01.000Z",
        }
    )


def _decide(event: dict[str, Any], **settings: Any) -> Any:
    return normalise(_request(event), _settings(**settings))


def test_a_data_upload_becomes_a_data_run_with_the_decoded_key_and_exact_version() -> None:
    """Given the S3 sample (a key with '+' for a space), when normalised, then the run names the decoded key,
    its version and who uploaded it, as DynamoDB attributes ready for the audit record."""
    decision = _decide(_sample("s3-object-created.json"))
    assert decision.decision == "run"
    payload = decision.payload
    assert payload["kind"] == "data"
    data = payload["record"]["data"]
    assert data["data_key"] == {"S": "datasets/breast-cancer/train 2026-11-24.csv"}
    assert data["data_version_id"] == {"S": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"}
    key_and_version = "datasets/breast-cancer/train 2026-11-24.csv?versionId=IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert data["data_ref"] == {"S": f"s3://sagepipe-data-example/{key_and_version}"}
    assert data["data_size_bytes"] == {"N": "121744"}
    assert "commit" not in payload["record"]
    base = payload["record"]["base"]
    assert base["pk"] == {"S": "RUN#run-1"}
    assert base["schema_version"] == {"N": str(RECORD_SCHEMA_VERSION)}
    assert base["triggered_by"] == {"S": "123456789012"}
    assert base["trigger_source_ip"] == {"S": "203.0.113.15"}
    assert payload["training"]["hyperparameters"] == {
        "n_estimators": "200",
        "max_depth": "3",
        "warm_start": "true",
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("datasets/caf%C3%A9/na%C3%AFve+%28v2%29.csv", "datasets/café/naïve (v2).csv"),
        ("datasets/a%2Bb.csv", "datasets/a+b.csv"),
        ("datasets/%E6%95%B0%E6%8D%AE.csv", "datasets/数据.csv"),
    ],
)
def test_url_encoded_and_unicode_keys_are_decoded(encoded: str, decoded: str) -> None:
    event = _sample("s3-object-created.json")
    event["detail"]["object"]["key"] = encoded
    assert _decide(event).payload["record"]["data"]["data_key"] == {"S": decoded}


def test_a_codecommit_push_becomes_a_code_run() -> None:
    decision = _decide(_sample("codecommit-push.json"))
    commit = decision.payload["record"]["commit"]
    assert decision.payload["kind"] == "code"
    assert commit["commit_id"] == {"S": COMMIT}
    assert commit["commit_branch"] == {"S": "main"}
    assert decision.payload["record"]["base"]["triggered_by"] == {"S": "arn:aws:iam::123456789012:user/ml-engineer"}


def test_a_github_push_becomes_a_code_run_with_the_head_commits_details() -> None:
    decision = _decide(_sample("github-push-event.json"), code_repository="example-org/training-code")
    commit = decision.payload["record"]["commit"]
    assert commit["commit_message"] == {"S": "Tune max_depth for the gradient boosting model"}
    assert commit["commit_author"] == {"S": "Mona Lisa <mona@example.com>"}
    assert decision.payload["record"]["base"]["triggered_by"] == {"S": "monalisa"}


def _changed(sample: str, path: list[str], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(_sample(sample))
    target = event
    for part in path[:-1]:
        target = target[part]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("sample", "path", "value", "reason"),
    [
        ("s3-object-created.json", ["detail", "bucket", "name"], "other-bucket", "not the data bucket"),
        ("s3-object-created.json", ["detail", "object", "key"], "other/train.csv", "outside the data prefix"),
        ("s3-object-created.json", ["detail", "object", "key"], "datasets/folder/", "folder marker"),
        ("s3-object-created.json", ["detail", "object", "size"], 0, "empty"),
        ("s3-object-created.json", ["detail", "reason"], "POST Object", "not new content"),
        ("s3-object-created.json", ["detail", "object", "version-id"], None, "no version id"),
        ("s3-object-created.json", ["detail", "object", "version-id"], "null", "no version id"),
        ("s3-object-created.json", ["detail", "bucket"], None, "malformed S3 Object Created event"),
        ("s3-object-created.json", ["detail-type"], "Object Deleted", "unsupported event"),
        ("codecommit-push.json", ["detail", "referenceName"], "feature/x", "is not 'main'"),
        ("codecommit-push.json", ["detail", "referenceType"], "tag", "is not a branch"),
        ("codecommit-push.json", ["detail", "event"], "referenceDeleted", "was deleted"),
        ("codecommit-push.json", ["detail", "repositoryName"], "other", "is not 'sagepipe-training'"),
        ("codecommit-push.json", ["detail", "commitId"], "3e5b0c1", "not a full lowercase SHA-1"),
        ("codecommit-push.json", ["detail", "commitId"], None, "malformed CodeCommit event"),
        ("codecommit-push.json", ["source"], None, "unsupported event"),
    ],
)
def test_noise_is_ignored_with_a_reason(sample: str, path: list[str], value: Any, reason: str) -> None:
    """Given an event that must not start a run, then the decision is 'ignore' and the reason says why."""
    decision = _decide(_changed(sample, path, value))
    assert decision.decision == "ignore"
    assert reason in (decision.reason or "")
    assert decision.payload == {"decision": "ignore", "reason": decision.reason}


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (["detail", "ref"], "refs/tags/v1", "is not a branch"),
        (["detail", "ref"], "refs/heads/dev", "is not 'main'"),
        (["detail", "deleted"], True, "was deleted"),
        (["detail", "after"], "0" * 40, "was deleted"),
        (["detail", "repository"], "someone/else", "is not 'example-org/training-code'"),
    ],
)
def test_github_noise_is_ignored(path: list[str], value: Any, reason: str) -> None:
    decision = _decide(_changed("github-push-event.json", path, value), code_repository="example-org/training-code")
    assert decision.decision == "ignore"
    assert reason in (decision.reason or "")


def test_marker_mode_runs_only_on_the_marker_and_names_the_dataset() -> None:
    """In marker mode a dataset is a prefix: its files are ignored, its _SUCCESS marker starts the run."""
    event = _sample("s3-object-created.json")
    event["detail"]["object"]["key"] = "datasets/2026-11-24/part-0001.csv"
    assert _decide(event, data_trigger_mode="marker").decision == "ignore"
    event["detail"]["object"]["key"] = "datasets/2026-11-24/_SUCCESS"
    event["detail"]["object"]["size"] = 0  # markers are usually empty
    decision = _decide(event, data_trigger_mode="marker")
    assert decision.decision == "run"
    assert decision.payload["record"]["data"]["data_dataset_prefix"] == {"S": "datasets/2026-11-24/"}
    assert "marker mode" in decision.payload["waiting"]["forData"]


@pytest.mark.parametrize(
    "hyperparameters", ['["not", "an", "object"]', '{"nested": {"a": 1}}', '{"empty": null}', "{not json"]
)
def test_bad_hyperparameter_settings_fail_loudly(hyperparameters: str) -> None:
    """A misconfigured stack is a failure (recorded and notified), not a silently different training run."""
    with pytest.raises((ValidationError, ValueError)):
        _settings(training_hyperparameters=hyperparameters)


def test_a_bad_instance_type_setting_fails_loudly() -> None:
    with pytest.raises(ValidationError):
        _settings(training_instance_type="m5.large")


@pytest.mark.parametrize(
    ("instance_type", "encrypted_with_pipeline_key"),
    [("ml.m5.large", True), ("ml.c5.2xlarge", True), ("ml.g5.xlarge", False), ("ml.p4d.24xlarge", False)],
)
def test_the_run_says_whether_the_training_volume_takes_the_pipeline_key(
    instance_type: str, encrypted_with_pipeline_key: bool
) -> None:
    """Given an instance type, when a run is normalised, then the training config says whether Train may send
    VolumeKmsKeyId: not for a type with local NVMe storage, which SageMaker refuses it for."""
    decision = _decide(_sample("s3-object-created.json"), training_instance_type=instance_type)
    training = decision.payload["training"]
    assert training["instanceType"] == instance_type
    assert training["volumeEncryptedWithPipelineKey"] is encrypted_with_pipeline_key


def test_a_hyphenated_instance_family_is_a_valid_setting() -> None:
    """Given an instance type whose family has a hyphen (ml.p6-b200.48xlarge), then the settings accept it."""
    assert _settings(training_instance_type="ml.p6-b200.48xlarge").training_instance_type == "ml.p6-b200.48xlarge"


def _rerun(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(_sample("manual-run.json"))
    event["detail"] |= {
        "rerunOf": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "rerunRequestId": "5d1c1a9e-53c4-4b43-9bfc-2a8f5e1b7c00",
        "training": {
            "instanceType": "ml.g5.xlarge",
            "instanceCount": 1,
            "volumeSizeGb": 50,
            "maxRuntimeSeconds": 1800,
            "hyperparameters": {"n_estimators": "50", "seed": "7"},
        },
    }
    event["detail"] |= changes
    return event


def test_a_rerun_trains_with_the_originals_configuration_not_the_stacks() -> None:
    """Given a re-run request carrying the original run's training configuration, when normalised with other stack
    settings, then the run uses the original's, decides the volume key for the original's instance type (ml.g5 has
    local storage: no pipeline key), and the record says what it re-runs."""
    decision = _decide(_rerun())

    assert decision.decision == "run"
    payload = decision.payload
    assert payload["training"] == {
        "instanceType": "ml.g5.xlarge",
        "instanceCount": 1,
        "volumeSizeGb": 50,
        "maxRuntimeSeconds": 1800,
        "hyperparameters": {"n_estimators": "50", "seed": "7"},
        "managedSpot": False,
        "maxWaitSeconds": 7200,
        "keepAliveSeconds": 0,
        "volumeEncryptedWithPipelineKey": False,
    }
    assert payload["rerun"] == {
        "of": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "requestId": "5d1c1a9e-53c4-4b43-9bfc-2a8f5e1b7c00",
    }
    base = payload["record"]["base"]
    assert base["rerun_of"] == {"S": "0f8fad5b-d9cb-469f-a165-70867728950e"}
    assert base["rerun_request_id"] == {"S": "5d1c1a9e-53c4-4b43-9bfc-2a8f5e1b7c00"}
    assert (base["instance_type"], base["instance_count"], base["volume_size_gb"]) == (
        {"S": "ml.g5.xlarge"},
        {"N": "1"},
        {"N": "50"},
    )
    assert base["trigger_kind"] == {"S": "manual"}


def test_a_plain_manual_run_uses_the_stacks_configuration_and_is_no_rerun() -> None:
    payload = _decide(_sample("manual-run.json")).payload
    assert payload["training"]["instanceType"] == "ml.m5.large"
    assert payload["training"]["volumeSizeGb"] == 30
    assert "rerun" not in payload
    assert "rerun_of" not in payload["record"]["base"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"rerunRequestId": None}, "rerunOf, rerunRequestId and training together"),
        ({"rerunRequestId": "x y"}, "rerunRequestId"),
        ({"training": {"instanceType": "m5.large"}}, "training"),
    ],
    ids=["no-request-id", "bad-request-id", "bad-training"],
)
def test_a_malformed_rerun_request_is_ignored_with_a_reason(changes: dict[str, Any], reason: str) -> None:
    """Given a re-run request missing or spoiling one of its parts, then it is no run: a half re-run would be
    claimed as a plain manual run of the pair, or train with a configuration nobody chose."""
    decision = _decide(_rerun(**changes))
    assert decision.decision == "ignore"
    assert reason in str(decision.reason)


# ----------------------------------------------------------------------------- the image tree of a commit
TREE = "9f0c2b8d1e4a6c3b5d7e9f1a2b3c4d5e6f708192"


def _tree_decision(event: dict[str, Any], answer: str | None, **settings: Any) -> tuple[Any, list[tuple[str, str]]]:
    asked: list[tuple[str, str]] = []

    def resolve(repository: str, commit: str) -> str | None:
        asked.append((repository, commit))
        return answer

    return normalise(_request(event), _settings(**settings), resolve), asked


def test_a_codecommit_push_carries_its_image_tree_from_codecommit() -> None:
    """Given a CodeCommit push, when normalised, then CodeCommit is asked for that commit's tree, and the commit's
    record attributes carry it (the latest-commit pointer keeps it for data runs)."""
    decision, asked = _tree_decision(_sample("codecommit-push.json"), TREE)
    assert asked == [("sagepipe-training", COMMIT)]
    assert decision.payload["record"]["commit"]["commit_image_tree"] == {"S": TREE}


def test_a_github_push_leaves_the_tree_to_the_build() -> None:
    """Given a GitHub push, then nobody is asked (only a clone can tell the tree) and the commit has no tree."""
    decision, asked = _tree_decision(
        _sample("github-push-event.json"), TREE, code_repository="example-org/training-code", code_source="github"
    )
    assert asked == []
    assert "commit_image_tree" not in decision.payload["record"]["commit"]


@pytest.mark.parametrize(("source", "asks"), [("codecommit", True), ("github", False)])
def test_a_manual_run_asks_codecommit_only_when_builds_clone_from_it(source: str, asks: bool) -> None:
    decision, asked = _tree_decision(_sample("manual-run.json"), TREE, code_source=source)
    assert bool(asked) is asks
    assert ("commit_image_tree" in decision.payload["record"]["commit"]) is asks


def test_an_unreadable_tree_leaves_the_commit_without_one() -> None:
    """Given CodeCommit cannot answer (the resolver gives None), then the run still runs, with no tree: the
    build derives it."""
    decision, asked = _tree_decision(_sample("codecommit-push.json"), None)
    assert asked
    assert decision.decision == "run"
    assert "commit_image_tree" not in decision.payload["record"]["commit"]


def test_spot_and_warm_pool_settings_reach_the_run_and_a_rerun_gets_a_wait_no_shorter_than_its_runtime() -> None:
    """Given a stack with managed Spot, a 4,000 s wait and a warm pool;
    When a plain manual run and a re-run of an original that ran up to 5,000 s are normalised;
    Then both use the stack's Spot and warm pool settings (cost settings, not the original's), and the re-run's
    wait is raised to its runtime, which SageMaker requires."""
    spot = {
        "training_managed_spot": True,
        "training_max_wait_seconds": 4000,
        "training_keep_alive_seconds": 900,
    }
    plain = _decide(_sample("manual-run.json"), **spot).payload["training"]
    assert (plain["managedSpot"], plain["maxWaitSeconds"], plain["keepAliveSeconds"]) == (True, 4000, 900)

    rerun_event = _rerun()
    rerun_event["detail"]["training"]["maxRuntimeSeconds"] = 5000
    rerun = _decide(rerun_event, **spot).payload["training"]
    assert (rerun["managedSpot"], rerun["maxRuntimeSeconds"], rerun["maxWaitSeconds"]) == (True, 5000, 5000)


def test_a_spot_wait_shorter_than_the_runtime_is_refused_before_a_run_starts() -> None:
    """Given function settings changed by hand to a Spot wait below the max runtime, when the settings load, then
    they are refused with the one line the deploy-time check gives; without Spot the same numbers are fine."""
    with pytest.raises(
        ValidationError, match=r"MaxWaitTimeInSeconds \(1800\) is shorter than TrainingMaxRuntimeSeconds"
    ):
        _settings(training_managed_spot=True, training_max_wait_seconds=1800)
    assert _settings(training_managed_spot=False, training_max_wait_seconds=1800).training_max_wait_seconds == 1800
