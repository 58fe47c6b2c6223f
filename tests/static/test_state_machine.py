"""The state machine definition, checked for what neither AWS's validator nor cfn-lint catches offline."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonata
import pytest

from sagepipe import error_names
from sagepipe.template import PROJECT_ROOT, definition_path, load_template, state_machines
from train import METRIC_NAMES, metric_regex

ASL_PATH = PROJECT_ROOT / "statemachine" / "pipeline.asl.json"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
JSONPATH_ONLY_FIELDS = {"Parameters", "ResultPath", "InputPath", "OutputPath", "ResultSelector"}
TRAINING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return definition["States"]


def _targets(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


def test_the_template_loads_this_file(definition: dict[str, Any]) -> None:
    """The file under test is the one the template deploys."""
    (machine,) = state_machines(load_template()).values()
    assert definition_path(machine) == ASL_PATH


def test_every_transition_target_exists(definition: dict[str, Any], states: dict[str, dict[str, Any]]) -> None:
    """Given every Next, Default, Choice and Catch target, then each names a state of this machine."""
    assert definition["StartAt"] in states
    missing = {(name, target) for name, state in states.items() for target in _targets(state) if target not in states}
    assert not missing, f"transitions to states that do not exist: {sorted(missing)}"


def test_every_state_is_reachable_and_every_path_ends(
    definition: dict[str, Any], states: dict[str, dict[str, Any]]
) -> None:
    """No dead states (a renamed target leaves one behind), and no state without a way out."""
    reachable, frontier = set(), [definition["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name not in reachable:
            reachable.add(name)
            frontier.extend(_targets(states[name]))
    assert set(states) == reachable, f"unreachable: {sorted(set(states) - reachable)}"
    for name, state in states.items():
        terminal = state["Type"] in {"Succeed", "Fail"} or state.get("End") is True
        assert terminal or any(True for _ in _targets(state)), f"{name} has no Next and does not end"


def test_every_task_retries_transient_errors_and_catches_everything(
    states: dict[str, dict[str, Any]],
) -> None:
    """Given every Task, then it has a Retry, and a Catch on States.ALL routes its failures somewhere."""
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert len(tasks) >= 10
    for name, task in tasks.items():
        assert task.get("Retry"), f"{name} has no Retry"
        for retrier in task["Retry"]:
            assert retrier.get("JitterStrategy") == "FULL", f"{name}: retries without jitter synchronise"
            assert retrier.get("BackoffRate", 1) > 1, f"{name}: retries without backoff"
        catch_all = [catcher for catcher in task.get("Catch", []) if "States.ALL" in catcher["ErrorEquals"]]
        assert catch_all, f"{name} has no Catch on States.ALL"
        assert task["Catch"][-1] is catch_all[0], f"{name}: States.ALL must be the last catcher"


def _integration(task: dict[str, Any]) -> str:
    return str(task["Resource"]).removeprefix("arn:aws:states:::").removesuffix(".sync")


def test_every_retry_lists_exactly_the_transient_errors_aws_names_for_its_integration(
    states: dict[str, dict[str, Any]],
) -> None:
    """Given every Task, then its Retry names are the transient failures its integration can raise, named as Step
    Functions names them (sagepipe.error_names, sources in docs/error-names.md): none missing, none that AWS
    never emits, and no permanent one."""
    for name, task in states.items():
        if task["Type"] != "Task":
            continue
        integration = _integration(task)
        retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
        never_emitted = retried - error_names.names_emitted(integration)
        assert not never_emitted, f"{name} retries names AWS never emits for {integration}: {sorted(never_emitted)}"
        missing = error_names.transient_names(integration) - retried
        assert not missing, f"{name} does not retry transient errors of {integration}: {sorted(missing)}"
        permanent = retried - error_names.transient_names(integration)
        assert not permanent, f"{name} retries permanent errors: {sorted(permanent)}"


def test_every_catch_names_an_error_aws_emits_for_its_integration(states: dict[str, dict[str, Any]]) -> None:
    """A Catch on a name AWS never emits would never fire: the failure would take the catch-all instead."""
    for name, task in states.items():
        if task["Type"] != "Task":
            continue
        caught = {error for catcher in task["Catch"] for error in catcher["ErrorEquals"]} - {"States.ALL"}
        never_emitted = caught - error_names.names_emitted(_integration(task))
        assert not never_emitted, f"{name} catches names AWS never emits: {sorted(never_emitted)}"


def test_every_failure_reaches_the_recorded_notified_failure_branch(
    states: dict[str, dict[str, Any]],
) -> None:
    """Every catch-all outside the failure branch and the seal goes to DescribeFailure, which records, notifies and
    fails. A record the failure branch did write is sealed first; one it could not write (or that was already
    final) goes straight to the notification."""
    branch = {"DescribeFailure", "RecordFailure", "NotifyFailure", "RunFailed", "SealRecord"}
    for name, state in states.items():
        if state["Type"] != "Task" or name in branch:
            continue
        catch_all = next(c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"])
        assert catch_all["Next"] == "DescribeFailure", name
        assert f"'stage': '{name}'" in catch_all["Assign"]["failure"], f"{name} must name itself as the failed stage"
    assert states["DescribeFailure"]["Next"] == "RecordFailure"
    assert states["RecordFailure"]["Next"] == "SealRecord"
    assert {catcher["Next"] for catcher in states["RecordFailure"]["Catch"]} == {"NotifyFailure"}
    assert states["NotifyOutcome"]["Default"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == states["NotifyFailure"]["Catch"][0]["Next"] == "RunFailed"
    assert states["RunFailed"]["Type"] == "Fail"


FINAL_RECORD_WRITERS = {
    "RecordSuccess",
    "RecordRejected",
    "RecordFailure",
    "RecordSkipped",
    "RecordDuplicate",
    "RecordCached",
}


def test_every_final_record_is_sealed_before_it_is_notified(states: dict[str, dict[str, Any]]) -> None:
    """Given each state that writes a final record, then the next state seals it, and only then is the outcome
    notified. A failed seal never reaches the failure branch (the record is final and must not be rewritten):
    it goes on to the notification, and the execution then ends at SealFailed."""
    for name in FINAL_RECORD_WRITERS:
        assert states[name]["Next"] == "SealRecord", name
        assert "outcome" in states[name]["Assign"], f"{name} must say which outcome NotifyOutcome routes"
    seal = states["SealRecord"]
    assert seal["Next"] == "NotifyOutcome"
    (catch_all,) = seal["Catch"]
    assert catch_all["ErrorEquals"] == ["States.ALL"]
    assert catch_all["Next"] == "NotifyOutcome"
    assert "seal" in catch_all["Assign"]
    routed = {choice["Next"] for choice in states["NotifyOutcome"]["Choices"]} | {states["NotifyOutcome"]["Default"]}
    assert routed == {"NotifySuccess", "NotifyRejected", "NotifySkipped", "NotifyCached", "NotifyFailure", "CheckSeal"}
    for notify in ("NotifySuccess", "NotifyRejected", "NotifySkipped", "NotifyCached"):
        assert states[notify]["Next"] == "CheckSeal", notify
        assert "Ledger: NOT written" in states[notify]["Arguments"]["Message"], notify
    assert "Ledger: NOT written" in states["NotifyFailure"]["Arguments"]["Message"]
    assert states["CheckSeal"]["Choices"][0]["Next"] == "SealFailed"
    assert states["SealFailed"] == states["SealFailed"] | {"Type": "Fail", "Error": "sagepipe.SealRecordFailed"}


def test_the_seal_retries_what_the_other_lambda_tasks_retry(states: dict[str, dict[str, Any]]) -> None:
    assert states["SealRecord"]["Retry"] == states["NormaliseTrigger"]["Retry"]


@pytest.mark.parametrize(
    ("rerun", "expected"),
    [
        (None, "CLAIM#c0ffee#s3://data/train.csv?versionId=v1"),
        ({"of": "run-0", "requestId": "req-1234"}, "CLAIM#c0ffee#s3://data/train.csv?versionId=v1#RERUN#req-1234"),
    ],
    ids=["trigger", "rerun"],
)
def test_a_rerun_claims_its_own_request_and_the_owner_lookup_reads_the_same_claim(
    states: dict[str, dict[str, Any]], rerun: dict[str, str] | None, expected: str
) -> None:
    """Given a run and a re-run of the same (commit, data version), then they claim different keys (the re-run is
    no duplicate of its original), a redelivered re-run request claims the same key again (it is a duplicate of the
    re-run), and FindClaimOwner reads exactly the key ClaimRun wrote."""
    bindings = {
        "commit": {"commit_id": {"S": "c0ffee"}},
        "data": {"data_ref": {"S": "s3://data/train.csv?versionId=v1"}},
        "run": {"rerun": rerun} if rerun else {"kind": "data"},
    }
    claimed = _evaluate(states["ClaimRun"]["Arguments"]["Item"]["pk"]["S"], bindings)
    looked_up = _evaluate(states["FindClaimOwner"]["Arguments"]["Key"]["pk"]["S"], bindings)
    assert claimed == looked_up == expected


def test_the_query_language_is_jsonata_throughout(
    definition: dict[str, Any], states: dict[str, dict[str, Any]]
) -> None:
    assert definition["QueryLanguage"] == "JSONata"
    for name, state in states.items():
        assert state.get("QueryLanguage", "JSONata") == "JSONata", name
        assert not JSONPATH_ONLY_FIELDS & set(state), f"{name} uses JSONPath fields"


def test_substitutions_appear_only_inside_arguments(states: dict[str, dict[str, Any]]) -> None:
    """${...} keys are filled in at deploy time: only in Arguments, never in Resource."""
    for name, state in states.items():
        assert not SUBSTITUTION.search(state.get("Resource", "")), f"{name}: substitution in Resource"
        for path, value in _walk(state):
            if isinstance(value, str) and SUBSTITUTION.search(value):
                assert path[0] == "Arguments", f"{name}: substitution outside Arguments at {'.'.join(path)}"


def test_substitution_keys_match_the_template_both_ways() -> None:
    """Every key the ASL uses is defined in DefinitionSubstitutions, every defined key is used, and each key
    is <LogicalId>Arn or <LogicalId>Name of the resource it points at."""
    template = load_template()
    (machine,) = state_machines(template).values()
    defined = machine["Properties"]["DefinitionSubstitutions"]
    used = set(SUBSTITUTION.findall(ASL_PATH.read_text(encoding="utf-8")))
    assert used == set(defined), f"used only: {used - set(defined)}; defined only: {set(defined) - used}"
    for key, value in defined.items():
        match = re.fullmatch(r"(?P<logical_id>[A-Za-z0-9]+)(?P<kind>Arn|Name)", key)
        assert match, f"{key} is not <LogicalId>Arn or <LogicalId>Name"
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        assert target == match["logical_id"], f"{key} points at {target}"
        assert target in template["Resources"]
        if match["kind"] == "Arn" and "Fn::GetAtt" in value:
            assert value["Fn::GetAtt"][1] == "Arn", key


def test_metric_definitions_parse_what_the_training_script_prints(states: dict[str, dict[str, Any]]) -> None:
    """The regexes SageMaker applies to the job's log are the ones train.py's output satisfies."""
    definitions = states["Train"]["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert {d["Name"] for d in definitions} == set(METRIC_NAMES)
    for item in definitions:
        assert item["Regex"] == metric_regex(item["Name"])
        found = re.search(item["Regex"], f"noise\n{item['Name']}=0.956140;\n")
        assert found
        assert found.group(1) == "0.956140"


def _evaluate(expression: str, bindings: dict[str, Any]) -> Any:
    body = expression.removeprefix("{%").removesuffix("%}").strip()
    return jsonata.Jsonata(body).evaluate(None, bindings)


@pytest.mark.parametrize(
    ("execution_name", "retry_count"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", 0),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", 7),
        ("manual_run.with..odd--characters!" + "x" * 46, 12),
        ("-leading-and-trailing-", 0),
    ],
)
def test_training_job_names_are_valid_and_unique_per_attempt(
    states: dict[str, dict[str, Any]], execution_name: str, retry_count: int
) -> None:
    """Given any valid execution name and retry count, the job name SageMaker gets is valid, and a retry gets
    a different one (SageMaker never reuses a training job name)."""
    prefix = _evaluate(
        states["OpenRunRecord"]["Assign"]["trainingJobPrefix"],
        {"states": {"context": {"Execution": {"Name": execution_name, "RedriveCount": 1}}}},
    )

    def name(retry: int) -> str:
        context = {"Execution": {"Name": execution_name}, "State": {"RetryCount": retry}}
        return str(
            _evaluate(
                states["Train"]["Arguments"]["TrainingJobName"],
                {"trainingJobPrefix": prefix, "states": {"context": context}},
            )
        )

    first, retried = name(retry_count), name(retry_count + 1)
    assert TRAINING_JOB_NAME.fullmatch(first), first
    assert first != retried
    assert first.endswith(f"-r1a{retry_count}")


def test_the_failure_branch_derives_status_and_reason_from_any_cause(
    states: dict[str, dict[str, Any]],
) -> None:
    """A Stopped training job is STOPPED, a failed one FAILED with SageMaker's FailureReason, and an error with no
    cause still gets a reason (the branch is a Pass state: it must never fail itself)."""
    expression = states["DescribeFailure"]["Assign"]["failure"]
    stopped = _evaluate(
        expression,
        {
            "failure": {
                "stage": "Train",
                "error": "States.TaskFailed",
                "cause": '{"TrainingJobStatus": "Stopped", "FailureReason": "MaxRuntimeExceeded"}',
            }
        },
    )
    assert (stopped["status"], stopped["reason"]) == ("STOPPED", "MaxRuntimeExceeded")
    failed = _evaluate(
        expression,
        {
            "failure": {
                "stage": "Train",
                "error": "States.TaskFailed",
                "cause": '{"TrainingJobStatus":"Failed","FailureReason":"ValueError: no \\"target\\" column"}',
            }
        },
    )
    assert (failed["status"], failed["reason"]) == ("FAILED", 'ValueError: no \\"target\\" column')
    bare = _evaluate(expression, {"failure": {"stage": "FindImage", "error": "States.Timeout", "cause": ""}})
    timed_out = "The FindImage task did not finish within its TimeoutSeconds."
    assert (bare["status"], bare["reason"], bare["cause"]) == ("FAILED", timed_out, timed_out)
    no_cause = _evaluate(expression, {"failure": {"stage": "Train", "error": "States.Runtime", "cause": ""}})
    assert (no_cause["reason"], no_cause["cause"]) == ("States.Runtime", "States.Runtime")
    long_cause = _evaluate(expression, {"failure": {"stage": "ClaimRun", "error": "X", "cause": "y" * 20000}})
    assert len(long_cause["cause"]) == 8000
    assert len(long_cause["reason"]) == 500


def test_definition_is_small_enough_for_step_functions() -> None:
    """Step Functions rejects definitions over 1 MB; keep a wide margin."""
    assert Path(ASL_PATH).stat().st_size < 200_000


def test_dynamodb_expressions_alias_every_reserved_word(states: dict[str, dict[str, Any]]) -> None:
    """DynamoDB rejects reserved words (status, error, metrics...) used as attribute names in expressions;
    they must go through ExpressionAttributeNames. Checked against the reserved-word list moto enforces."""
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    reserved = {word.upper() for word in ReservedKeywords.get_reserved_keywords()}
    checked = 0
    for name, state in states.items():
        arguments = state.get("Arguments", {})
        for field in ("UpdateExpression", "ConditionExpression"):
            expression = arguments.get(field)
            if not isinstance(expression, str):
                continue
            if expression.startswith("{%"):
                # Built in JSONata: the DynamoDB expression is in its string literals.
                expression = " ".join(re.findall(r"'([^']*)'", expression))
            # Strip placeholders (:value, #name); what is left names attributes directly.
            bare = re.sub(r"[:#][A-Za-z0-9_]+", " ", expression)
            words = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", bare))
            functions = {
                "SET",
                "REMOVE",
                "ADD",
                "DELETE",
                "if_not_exists",
                "attribute_not_exists",
                "attribute_exists",
                "OR",
                "AND",
                "NOT",
                "list_append",
                "latest_data",
                "latest_commit",
            }
            clashing = {word for word in words - functions if word.upper() in reserved}
            assert not clashing, f"{name}.{field} uses reserved words without #aliases: {sorted(clashing)}"
            checked += 1
    assert checked >= 6


# ---------------------------------------------------------------------------------------- staging the data
COPY_OBJECT_MAX_BYTES = 5_368_709_120
"""S3 CopyObject copies a source of up to 5 GiB; above it S3 answers InvalidRequest (S3 API Reference, CopyObject)."""


def _choose(choice: dict[str, Any], bindings: dict[str, Any]) -> str:
    for rule in choice["Choices"]:
        if _evaluate(rule["Condition"], bindings) is True:
            return str(rule["Next"])
    return str(choice["Default"])


@pytest.mark.parametrize(
    ("data", "staged_by"),
    [
        ({"data_dataset_prefix": {"S": "sets/a/"}, "data_size_bytes": {"N": "0"}}, "StageDataset"),
        ({"data_size_bytes": {"N": "1"}}, "StageTrainingData"),
        ({"data_size_bytes": {"N": str(COPY_OBJECT_MAX_BYTES)}}, "StageTrainingData"),
        ({"data_size_bytes": {"N": str(COPY_OBJECT_MAX_BYTES + 1)}}, "StageTrainingDataInParts"),
        ({"data_size_bytes": {"N": str(10_000 * COPY_OBJECT_MAX_BYTES)}}, "StageTrainingDataInParts"),
        ({}, "StageTrainingDataInParts"),
    ],
    ids=["marker-mode", "one-byte", "exactly-5-GiB", "5-GiB-and-a-byte", "largest-object", "size-unknown"],
)
def test_object_mode_copies_in_one_request_only_what_copy_object_accepts(
    states: dict[str, dict[str, Any]], data: dict[str, Any], staged_by: str
) -> None:
    """Given the data half of a run, then StageInput sends a version of known size up to CopyObject's 5 GiB limit
    to the one-request copy, and a larger one, or one of unknown size (a manual run), to the copy in parts."""
    base = {"data_key": {"S": "datasets/train.csv"}, "data_version_id": {"S": "v1"}}
    assert _choose(states["StageInput"], {"data": base | data}) == staged_by


@pytest.mark.parametrize(
    "key",
    [
        "datasets/train.csv",
        "datasets/deep/nested/é 2026 + spaces.csv",
        "datasets/" + "n" * 100 + ".csv",
        "datasets/" + "ü" * 70 + ".parquet",
    ],
)
def test_both_object_mode_stages_write_the_same_file_where_the_function_accepts_it(
    states: dict[str, dict[str, Any]], key: str
) -> None:
    """Given any data key, the copy in parts stages the file StageTrainingData would (the last 63 characters of the
    name), and its payload is a request the staging function accepts (an object request, inside the run's channel)."""
    from stage_dataset.app import ObjectRequest, StageRequest

    bindings = {
        "data": {"data_key": {"S": key}, "data_version_id": {"S": "3HL4kqtJlcpXroDTDmJ"}},
        "states": {"context": {"Execution": {"Name": "0f8fad5b-d9cb-469f-a165-70867728950e"}}},
    }
    one_request = _evaluate(states["StageTrainingData"]["Arguments"]["Key"], bindings)
    payload = {
        name: _evaluate(value, bindings)
        for name, value in states["StageTrainingDataInParts"]["Arguments"]["Payload"].items()
    }
    assert payload["destinationKey"] == one_request
    assert len(one_request.rsplit("/", 1)[-1]) <= 63
    request = StageRequest.validate_python(payload)
    assert isinstance(request, ObjectRequest)
    assert (request.source_key, request.source_version_id) == (key, "3HL4kqtJlcpXroDTDmJ")


def test_marker_mode_sends_the_staging_function_a_dataset_request(states: dict[str, dict[str, Any]]) -> None:
    from stage_dataset.app import DatasetRequest, StageRequest

    bindings = {
        "data": {
            "data_dataset_prefix": {"S": "sets/a/"},
            "data_key": {"S": "sets/a/_SUCCESS"},
            "data_version_id": {"S": "v1"},
        },
        "states": {"context": {"Execution": {"Name": "run-1"}}},
    }
    payload = {
        name: _evaluate(value, bindings) for name, value in states["StageDataset"]["Arguments"]["Payload"].items()
    }
    assert isinstance(StageRequest.validate_python(payload), DatasetRequest)


def test_new_tasks_retry_as_an_existing_task_of_their_integration(states: dict[str, dict[str, Any]]) -> None:
    """The image retagging, training cache and cached-outcome states retry exactly what an existing state of the
    same integration retries (ReadImageManifest and TagImageWithCommit: FindImage's list, plus the throttling code
    botocore's standard mode retries for their operations, Ecr.LimitExceededException)."""
    same = {
        "ComputeCacheKey": "DigestArtifact",
        "RecordCacheKey": "RecordSuccess",
        "RecordCached": "RecordSuccess",
        "RecordCachePackage": "RecordSuccess",
        "NotifyCached": "NotifySuccess",
    }
    for new, existing in same.items():
        assert states[new]["Retry"] == states[existing]["Retry"], new
    for new in ("ReadImageManifest", "TagImageWithCommit"):
        (retrier,) = states[new]["Retry"]
        (find,) = states["FindImage"]["Retry"]
        assert set(retrier["ErrorEquals"]) == set(find["ErrorEquals"]) | {"Ecr.LimitExceededException"}, new
        assert {k: v for k, v in retrier.items() if k != "ErrorEquals"} == {
            k: v for k, v in find.items() if k != "ErrorEquals"
        }, new


def test_the_cache_decides_before_staging_and_a_hit_skips_training(states: dict[str, dict[str, Any]]) -> None:
    """Given an image (found, built or retagged), then the cache key is computed before any data is staged; a hit
    goes to the gate without Train (with the cached model as its artifact), a miss or a forced run records the
    key and trains."""
    for name in ("BuildImage", "TagImageWithCommit"):
        assert states[name]["Next"] == "ComputeCacheKey", name
    assert states["FindImage"]["Next"] == "ImageCarriesCommitTag"
    assert states["ImageCarriesCommitTag"]["Choices"][0]["Next"] == "ComputeCacheKey"
    assert states["ComputeCacheKey"]["Next"] == "UseCachedRun"
    (hit,) = states["UseCachedRun"]["Choices"]
    assert hit["Next"] == "EvaluateGate"
    assert hit["Assign"] == {"artifact": "{% $cache.hit.artifact %}"}
    assert states["UseCachedRun"]["Default"] == "RecordCacheKey"
    assert states["RecordCacheKey"]["Next"] == "StageInput"
    assert states["RecordCached"]["Assign"]["outcome"] == "CACHED"


def _route(state: dict[str, Any], bindings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Where a Choice state goes for these variables, and what its matching rule assigns (evaluated)."""
    for rule in state["Choices"]:
        if _evaluate(rule["Condition"], bindings) is True:
            assigned = {name: _evaluate(value, bindings) for name, value in rule.get("Assign", {}).items()}
            return rule["Next"], assigned
    return state["Default"], {}


PACKAGE = {"arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/4", "version": 4, "registeredBy": "A"}


@pytest.mark.parametrize(
    ("cache", "passed", "expected"),
    [
        ({"decision": "miss"}, True, ("RegisterModelPackage", {})),
        ({"decision": "forced"}, False, ("RecordRejected", {})),
        ({"decision": "hit", "hit": {"runId": "A"}}, True, ("RegisterModelPackage", {})),
        (
            {"decision": "hit", "hit": {"runId": "A", "modelPackage": PACKAGE}},
            True,
            ("RecordCached", {"modelPackage": PACKAGE | {"reused": True}}),
        ),
        (
            {"decision": "hit", "hit": {"runId": "A", "modelPackage": PACKAGE}},
            False,
            ("RecordCached", {"modelPackage": None}),
        ),
        ({"decision": "hit", "hit": {"runId": "A"}}, False, ("RecordCached", {"modelPackage": None})),
    ],
    ids=[
        "trained-passed",
        "forced-rejected",
        "cached-passed-without-package",
        "cached-passed-with-package",
        "cached-rejected-with-package",
        "cached-rejected",
    ],
)
def test_the_gate_routes_a_cached_run_to_cached_and_registers_only_a_model_without_a_package(
    states: dict[str, dict[str, Any]], cache: dict[str, Any], passed: bool, expected: tuple[str, dict[str, Any]]
) -> None:
    """Given the cache's decision and the gate's verdict, then a trained run is registered or REJECTED as before; a
    cached run ends CACHED either way, registered only when it passed and its model has no package yet, else
    recording the package it has (reused) when it passed, and none when it was rejected."""
    assert _route(states["GatePassed"], {"cache": cache, "gate": {"passed": passed}}) == expected


def test_a_registration_goes_on_to_the_outcome_of_its_run(states: dict[str, dict[str, Any]]) -> None:
    """Given a registered package, then a trained run is recorded SUCCEEDED; a cached run's package is first
    written on its key's entry (so later hits register nothing), then the run is recorded CACHED."""
    assert states["RegisterModelPackage"]["Next"] == "RegisteredForCachedRun"
    choice = states["RegisteredForCachedRun"]
    assert _route(choice, {"cache": {"decision": "miss"}}) == ("RecordSuccess", {})
    assert _route(choice, {"cache": {"decision": "hit"}}) == ("RecordCachePackage", {})
    entry = states["RecordCachePackage"]
    assert entry["Next"] == "RecordCached"
    assert entry["Arguments"]["Key"]["pk"]["S"] == "{% 'CACHE#' & $cache.key %}"
    values = _evaluate(
        entry["Arguments"]["ExpressionAttributeValues"],
        {"modelPackage": {"arn": "arn:p/5", "version": 5}, "cache": {"key": "k", "hit": {"runId": "A"}}},
    )
    assert values[":source"] == {"S": "A"}
    assert values[":version"] == {"N": "5"}
    assert "if_not_exists(model_package_arn, :arn)" in entry["Arguments"]["UpdateExpression"]


def test_the_gate_judges_the_cached_runs_metrics_and_names_it(states: dict[str, dict[str, Any]]) -> None:
    """Given a cache hit, then EvaluateGate sends the cached run's metrics and names that run; given a trained run,
    its training job's metrics and no source."""
    payload = states["EvaluateGate"]["Arguments"]["Payload"]
    hit = {"cache": {"decision": "hit", "hit": {"runId": "A", "metrics": {"m": 0.5}}}, "training": None}
    trained = {"cache": {"decision": "miss"}, "training": {"metrics": {"m": 0.7}}}
    assert (_evaluate(payload["metrics"], hit), _evaluate(payload["cachedFrom"], hit)) == ({"m": 0.5}, "A")
    assert (_evaluate(payload["metrics"], trained), _evaluate(payload["cachedFrom"], trained)) == ({"m": 0.7}, None)
