"""Behaviour of the JSONata adapter: small JSONata state machines run on moto's Step Functions engine.

Every test deploys a state machine to in-process moto (no Docker, no AWS account), starts one or more
named executions, waits for them with a deadline and checks the output or the failure.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sagepipe.local.process import poll_until
from sagepipe.local.stepfunctions import jsonata as jsonata_adapter
from sagepipe.local.stepfunctions.jsonata import install

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
ROLE_ARN = "arn:aws:iam::123456789012:role/sagepipe-local"
REGION = "us-east-1"
EXECUTION_DEADLINE_SECONDS = 30.0
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"


@pytest.fixture(scope="module", autouse=True)
def _adapter_installed() -> None:
    install()


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config=MOTO_CONFIG):
        yield boto3.client("stepfunctions", region_name=REGION)


@dataclass
class Execution:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]


def deploy(sfn: Any, definition: dict[str, Any], name: str = "machine") -> str:
    response = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    return str(response["stateMachineArn"])


def execute(sfn: Any, machine_arn: str, payload: Any, *, name: str) -> Execution:
    """Start a named execution and wait, up to a deadline, for it to leave RUNNING."""
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))[
        "executionArn"
    ]
    description: dict[str, Any] = {}

    def left_running() -> bool:
        nonlocal description
        description = sfn.describe_execution(executionArn=execution_arn)
        return description["status"] != "RUNNING"

    if not poll_until(left_running, timeout=EXECUTION_DEADLINE_SECONDS, interval=0.02):
        pytest.fail(f"execution {name} still RUNNING after {EXECUTION_DEADLINE_SECONDS} s")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    output = description.get("output")
    return Execution(
        status=description["status"],
        output=json.loads(output) if output is not None else None,
        error=description.get("error"),
        cause=description.get("cause"),
        events=events,
    )


def run(sfn: Any, definition: dict[str, Any], payload: Any, *, name: str = "run") -> Execution:
    """Deploy the definition as its own state machine and run it once."""
    return execute(sfn, deploy(sfn, definition, name=f"machine-{name}"), payload, name=name)


def jsonata_machine(states: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states}


def pass_output(output: Any) -> dict[str, Any]:
    return jsonata_machine({"Only": {"Type": "Pass", "Output": output, "End": True}}, "Only")


# --------------------------------------------------------------------------- $states and variables


def test_output_and_assign_read_states_input_and_execution_name(sfn: Any) -> None:
    """A Pass state's Output and Assign see $states.input and $states.context; a later state the variables."""
    # Given a machine whose first state assigns from the input and the context object
    definition = jsonata_machine(
        {
            "Read": {
                "Type": "Pass",
                "Assign": {
                    "model": "{% $states.input.model %}",
                    "runName": "{% $states.context.Execution.Name %}",
                },
                "Output": {
                    "doubled": "{% $states.input.epochs * 2 %}",
                    "state": "{% $states.context.State.Name %}",
                },
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Output": {
                    "job": "{% $model & '-' & $runName %}",
                    "previous": "{% $states.input %}",
                },
                "End": True,
            },
        },
        "Read",
    )
    # When it runs under the execution name "nightly-42"
    execution = run(sfn, definition, {"model": "xgb", "epochs": 21}, name="nightly-42")
    # Then both states saw what AWS gives them
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {
        "job": "xgb-nightly-42",
        "previous": {"doubled": 42, "state": "Read"},
    }


TRICKY_STRINGS = {
    "quotes": 'she said "ship it"',
    "backslashes": "C:\\models\\v1\\",
    "newlines": "line one\nline two\r\n\ttabbed",
    "unicode": "héllo wörld ✓ 😀 \u2028 \u0001",
    "json": '{"errorMessage": "bad \\"input\\"", "trace": ["a\\nb"]}',
    "braces": "{% not an expression %}",
}


def test_workflow_variables_round_trip_strings_exactly(sfn: Any) -> None:
    """Strings with quotes, backslashes, newlines and non-ASCII survive Assign and a later read unchanged."""
    # Given a state that assigns each tricky string to a variable and a later state that reads them back
    definition = jsonata_machine(
        {
            "Assign": {
                "Type": "Pass",
                "Assign": {name: f"{{% $states.input.{name} %}}" for name in TRICKY_STRINGS},
                "Next": "Read",
            },
            "Read": {
                "Type": "Pass",
                "Output": {
                    "values": {name: f"{{% ${name} %}}" for name in TRICKY_STRINGS},
                    "joined": "{% $join([" + ", ".join(f"${name}" for name in TRICKY_STRINGS) + "], '|') %}",
                },
                "End": True,
            },
        },
        "Assign",
    )
    # When it runs
    execution = run(sfn, definition, TRICKY_STRINGS)
    # Then every value is byte-for-byte what went in, alone and inside a computed expression
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["values"] == TRICKY_STRINGS
    assert execution.output["joined"] == "|".join(TRICKY_STRINGS.values())
    # And the history's assignedVariables are JSON texts of the same values
    (exited,) = [event for event in execution.events_of("PassStateExited") if "assignedVariables" in str(event)]
    assigned = exited["stateExitedEventDetails"]["assignedVariables"]
    assert {name: json.loads(text) for name, text in assigned.items()} == TRICKY_STRINGS


def test_null_is_a_value_and_not_undefined(sfn: Any) -> None:
    """JSON null in the input and a variable holding null evaluate to null, not to 'returned nothing'."""
    definition = jsonata_machine(
        {
            "Assign": {"Type": "Pass", "Assign": {"nothing": None}, "Next": "Read"},
            "Read": {
                "Type": "Pass",
                "Output": {
                    "fromInput": "{% $states.input.value %}",
                    "fromVariable": "{% $nothing %}",
                    "isNull": "{% $nothing = null %}",
                    "constructed": "{% {'a': null, 'b': [null, $nothing], 'c': $states.input} %}",
                },
                "End": True,
            },
        },
        "Assign",
    )
    execution = run(sfn, definition, {"value": None})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {
        "fromInput": None,
        "fromVariable": None,
        "isNull": True,
        "constructed": {"a": None, "b": [None, None], "c": {"value": None}},
    }


def test_large_input_is_bound_not_copied_into_the_result(sfn: Any) -> None:
    """A ~20 KB $states.input is read through bindings; the result is an independent copy of it."""
    items = [{"id": index, "text": f'item "{index}"\n'} for index in range(400)]
    definition = jsonata_machine(
        {
            "Copy": {
                "Type": "Pass",
                "Assign": {"snapshot": "{% $states.input.items %}"},
                "Output": {
                    "items": "{% $states.input.items %}",
                    "count": "{% $count($states.input.items) %}",
                },
                "Next": "Check",
            },
            "Check": {
                "Type": "Pass",
                "Output": "{% $snapshot = $states.input.items and $count($snapshot) = $states.input.count %}",
                "End": True,
            },
        },
        "Copy",
    )
    execution = run(sfn, definition, {"items": items})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output is True


# --------------------------------------------------------------------------- errors and Catch


def test_catch_reads_error_output_and_a_later_state_reads_the_assigned_error(sfn: Any) -> None:
    """A Catch's Assign and Output read $states.errorOutput; a later state parses the JSON Cause."""
    # Given a Parallel whose branch fails with a JSON cause full of quotes, backslashes and newlines
    cause = {"reason": 'quota "exceeded"', "path": "C:\\tmp\\run", "detail": "line1\nline2"}
    definition = jsonata_machine(
        {
            "Train": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Boom",
                        "States": {
                            "Boom": {
                                "Type": "Fail",
                                "Error": "Training.Failed",
                                "Cause": "{% $string($states.input.cause) %}",
                            }
                        },
                    }
                ],
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"failure": "{% $states.errorOutput %}"},
                        "Output": {
                            "error": "{% $states.errorOutput.Error %}",
                            "reason": "{% $parse($states.errorOutput.Cause).reason %}",
                        },
                        "Next": "Report",
                    }
                ],
                "End": True,
            },
            "Report": {
                "Type": "Pass",
                "Output": {
                    "caught": "{% $states.input %}",
                    "error": "{% $failure.Error %}",
                    "cause": "{% $parse($failure.Cause) %}",
                    "rawCause": "{% $failure.Cause %}",
                },
                "End": True,
            },
        },
        "Train",
    )
    # When it runs
    execution = run(sfn, definition, {"cause": cause})
    # Then the Catch saw the error, and the variable carried the exact Cause text to the next state
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["caught"] == {"error": "Training.Failed", "reason": 'quota "exceeded"'}
    assert execution.output["error"] == "Training.Failed"
    assert execution.output["cause"] == cause
    assert json.loads(execution.output["rawCause"]) == cause


def test_runtime_error_in_arguments_is_caught_as_query_evaluation_error(sfn: Any) -> None:
    """A JSONata runtime error fails the task with States.QueryEvaluationError, which a Catch can handle."""
    # Given a task whose Arguments add a string to a number
    definition = jsonata_machine(
        {
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Arguments": {"TableName": "runs", "Item": {"pk": {"N": "{% $states.input.count + 'x' %}"}}},
                "Catch": [
                    {
                        "ErrorEquals": [QUERY_EVALUATION_ERROR],
                        "Output": "{% $states.errorOutput %}",
                        "Next": "Handled",
                    }
                ],
                "End": True,
            },
            "Handled": {"Type": "Succeed"},
        },
        "Put",
    )
    # When it runs
    execution = run(sfn, definition, {"count": 1})
    # Then the catcher received a QueryEvaluationError naming the expression and JSONata's error
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["Error"] == QUERY_EVALUATION_ERROR
    assert "$states.input.count + 'x'" in execution.output["Cause"]
    assert "T2002" in execution.output["Cause"]
    assert execution.events_of("EvaluationFailed")


def test_uncaught_runtime_error_fails_the_execution_with_query_evaluation_error(sfn: Any) -> None:
    execution = run(sfn, pass_output({"x": "{% $notAFunction(1) %}"}), {})
    assert execution.status == "FAILED"
    assert execution.error == QUERY_EVALUATION_ERROR
    assert execution.cause is not None
    assert "The JSONata expression '$notAFunction(1)' threw an error during evaluation. T1006" in execution.cause


def test_undefined_result_fails_the_execution(sfn: Any) -> None:
    """An expression that evaluates to undefined fails the field, with moto's cause."""
    execution = run(sfn, pass_output({"x": "{% $states.input.missing %}"}), {"present": 1})
    assert execution.status == "FAILED"
    assert execution.error == QUERY_EVALUATION_ERROR
    assert execution.cause is not None
    assert execution.cause.endswith("The JSONata expression '$states.input.missing' returned nothing (undefined).")


def test_function_result_is_an_unsupported_result_type(sfn: Any) -> None:
    execution = run(sfn, pass_output("{% function($x) { $x } %}"), {})
    assert execution.status == "FAILED"
    assert execution.error == QUERY_EVALUATION_ERROR
    assert execution.cause is not None
    assert execution.cause.endswith("returned an unsupported result type.")


# --------------------------------------------------------------------------- tasks and control flow


@pytest.fixture
def dynamodb(sfn: Any) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="runs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def test_dynamodb_put_item_takes_jsonata_arguments(sfn: Any, dynamodb: Any) -> None:
    """A dynamodb:putItem task builds its Item from JSONata; the Output reads $states.result."""
    # Given a task writing the run's name, metrics and a variable into DynamoDB
    definition = jsonata_machine(
        {
            "Remember": {"Type": "Pass", "Assign": {"note": "{% $states.input.note %}"}, "Next": "Put"},
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Arguments": {
                    "TableName": "runs",
                    "Item": {
                        "pk": {"S": "{% 'run#' & $states.context.Execution.Name %}"},
                        "accuracy": {"N": "{% $string($states.input.metrics.accuracy) %}"},
                        "note": {"S": "{% $note %}"},
                        "tags": {"SS": "{% $states.input.tags %}"},
                    },
                },
                "Output": {
                    "written": "{% $states.context.Execution.Name %}",
                    "result": "{% $states.result %}",
                },
                "End": True,
            },
        },
        "Remember",
    )
    payload = {"metrics": {"accuracy": 0.93}, "note": 'tuned "lr"\nagain', "tags": ["a", "b"]}
    # When it runs
    execution = run(sfn, definition, payload, name="train-7")
    # Then the item in the table is exactly what the expressions computed
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["written"] == "train-7"
    item = dynamodb.get_item(TableName="runs", Key={"pk": {"S": "run#train-7"}})["Item"]
    assert item["accuracy"] == {"N": "0.93"}
    assert item["note"] == {"S": 'tuned "lr"\nagain'}
    assert sorted(item["tags"]["SS"]) == ["a", "b"]


def test_retry_count_is_visible_to_each_attempt(sfn: Any, dynamodb: Any) -> None:
    """$states.context.State.RetryCount is 0 on the first attempt and 1 on the retry."""
    # Given a task whose first attempt targets a missing table and whose retry targets the real one
    definition = jsonata_machine(
        {
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Arguments": {
                    "TableName": "{% $states.context.State.RetryCount = 0 ? 'no-such-table' : 'runs' %}",
                    "Item": {"pk": {"S": "{% 'attempt-' & $states.context.State.RetryCount %}"}},
                },
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Output": {"retries": "{% $states.context.State.RetryCount %}"},
                "End": True,
            }
        },
        "Put",
    )
    # When it runs
    execution = run(sfn, definition, {})
    # Then the second attempt wrote its own retry count, and the Output saw it too
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"retries": 1}
    assert "Item" in dynamodb.get_item(TableName="runs", Key={"pk": {"S": "attempt-1"}})
    assert "Item" not in dynamodb.get_item(TableName="runs", Key={"pk": {"S": "attempt-0"}})


def test_choice_condition_is_jsonata(sfn: Any) -> None:
    """A Choice rule's Condition is a JSONata boolean that picks the branch."""
    machine_arn = deploy(
        sfn,
        jsonata_machine(
            {
                "Gate": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Condition": "{% $states.input.accuracy >= 0.9 and $states.input.approved %}",
                            "Next": "Ship",
                        }
                    ],
                    "Default": "Hold",
                },
                "Ship": {"Type": "Pass", "Output": {"decision": "ship"}, "End": True},
                "Hold": {"Type": "Pass", "Output": {"decision": "hold"}, "End": True},
            },
            "Gate",
        ),
    )
    shipped = execute(sfn, machine_arn, {"accuracy": 0.95, "approved": True}, name="good")
    held = execute(sfn, machine_arn, {"accuracy": 0.95, "approved": False}, name="unapproved")
    assert (shipped.status, shipped.output) == ("SUCCEEDED", {"decision": "ship"})
    assert (held.status, held.output) == ("SUCCEEDED", {"decision": "hold"})


def test_map_iterations_evaluate_concurrently_with_their_own_input(sfn: Any) -> None:
    """Map iterations run on their own threads; each evaluation sees its own $states.input."""
    definition = jsonata_machine(
        {
            "Each": {
                "Type": "Map",
                "Items": "{% $states.input.values %}",
                "MaxConcurrency": 8,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Square",
                    "States": {
                        "Square": {
                            "Type": "Pass",
                            "Output": {
                                "value": "{% $states.input %}",
                                "square": "{% $states.input * $states.input %}",
                                "digest": "{% $hash($string($states.input), 'MD5') %}",
                            },
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
        "Each",
    )
    values = list(range(40))
    execution = run(sfn, definition, {"values": values})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == [
        {
            "value": v,
            "square": v * v,
            "digest": hashlib.md5(str(v).encode(), usedforsecurity=False).hexdigest(),
        }
        for v in values
    ]


def test_now_and_millis_are_taken_at_evaluation_time(sfn: Any) -> None:
    """$millis() is the time of its own evaluation, not that of the first expression the thread evaluated.

    (Left alone, jsonata-python reads the timestamp of the Jsonata object it first used on the thread.)
    """
    # Given a machine whose expressions a first execution has already parsed and cached
    machine_arn = deploy(
        sfn,
        jsonata_machine(
            {
                "Before": {"Type": "Pass", "Assign": {"before": "{% $millis() %}"}, "Next": "Nap"},
                "Nap": {"Type": "Wait", "Seconds": "{% $states.input.nap %}", "Next": "After"},
                "After": {
                    "Type": "Pass",
                    "Output": "{% $millis() - $before %}",
                    "End": True,
                },
            },
            "Before",
        ),
    )
    execute(sfn, machine_arn, {"nap": 0}, name="warm-up")
    # When a later execution evaluates $millis() again one second after its thread first evaluated it
    execution = execute(sfn, machine_arn, {"nap": 1}, name="timed")
    # Then $millis() moved on by that second
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output >= 900


# --------------------------------------------------------------------------- AWS's added functions

SHA_VECTORS = {
    "MD5": "900150983cd24fb0d6963f7d28e17f72",
    "SHA-1": "a9993e364706816aba3e25717850c26c9cd0d89d",
    "SHA-256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "SHA-384": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    "SHA-512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
}


def test_aws_functions_compute_what_the_aws_guide_documents(sfn: Any) -> None:
    """$partition, $range, $hash, $random, $uuid and $parse, as documented by AWS."""
    # Given one Pass state that calls every added function
    output = {
        "hashes": {algorithm: f"{{% $hash('abc', '{algorithm}') %}}" for algorithm in SHA_VECTORS},
        "hashOfInput": "{% $hash($states.input.text, 'SHA-256') %}",
        "partitionExact": "{% $partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3) %}",
        "partitionRemainder": "{% $partition([1, 2, 3, 4, 5], 2) %}",
        "partitionSingleChunk": "{% $partition([0], 3) %}",
        "range": "{% $range(0, 10, 2) %}",
        "rangeNotReachingLast": "{% $range(0, 10, 3) %}",
        "rangeDescending": "{% $range(10, 0, -5) %}",
        "rangeSingle": "{% $range(1, 9, 9) %}",
        "randomInUnitInterval": "{% $map([1..50], function() { $random() }) ~> function($r) { $min($r) >= 0 and $max($r) < 1 } %}",  # noqa: E501
        "randomSeededRepeats": "{% $random(42) = $random(42) and $random(7) = $random(7) %}",
        "randomSeedsDiffer": "{% $random(1) != $random(2) %}",
        "randomSeeded": "{% $random(42) %}",
        "uuid": "{% $uuid() %}",
        "uuidsDiffer": "{% $uuid() != $uuid() %}",
        "parseObject": '{% $parse(\'{"a": [1, null, "x\\\\ny"], "b": {"c": true}}\') %}',
        "parseString": "{% $parse('\"text\"') %}",
        "parseNull": "{% $parse('null') %}",
    }
    machine_arn = deploy(sfn, pass_output(output))
    # When it runs twice
    first = execute(sfn, machine_arn, {"text": "abc"}, name="first")
    second = execute(sfn, machine_arn, {"text": "abc"}, name="second")
    # Then each result is AWS's
    assert first.status == "SUCCEEDED", first.cause
    result = first.output
    assert result["hashes"] == SHA_VECTORS
    assert result["hashOfInput"] == SHA_VECTORS["SHA-256"]
    assert result["partitionExact"] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert result["partitionRemainder"] == [[1, 2], [3, 4], [5]]
    assert result["partitionSingleChunk"] == [[0]]
    assert result["range"] == [0, 2, 4, 6, 8, 10]
    assert result["rangeNotReachingLast"] == [0, 3, 6, 9]
    assert result["rangeDescending"] == [10, 5, 0]
    assert result["rangeSingle"] == 1
    assert result["randomInUnitInterval"] is True
    assert result["randomSeededRepeats"] is True
    assert result["randomSeedsDiffer"] is True
    assert 0 <= result["randomSeeded"] < 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", result["uuid"])
    assert result["uuidsDiffer"] is True
    assert result["parseObject"] == {"a": [1, None, "x\ny"], "b": {"c": True}}
    assert result["parseString"] == "text"
    assert result["parseNull"] is None
    # And a seed gives the same number in another execution, while $uuid() does not repeat
    assert second.output["randomSeeded"] == result["randomSeeded"]
    assert second.output["uuid"] != result["uuid"]


def test_a_workflow_variable_wins_over_an_aws_function_of_the_same_name(sfn: Any) -> None:
    definition = jsonata_machine(
        {
            "Assign": {"Type": "Pass", "Assign": {"hash": "mine", "uuid": 7}, "Next": "Read"},
            "Read": {"Type": "Pass", "Output": {"hash": "{% $hash %}", "uuid": "{% $uuid %}"}, "End": True},
        },
        "Assign",
    )
    execution = run(sfn, definition, {})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"hash": "mine", "uuid": 7}


@pytest.mark.parametrize(
    ("expression", "in_cause"),
    [
        pytest.param("$hash('abc', 'SHA3-256')", "not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512", id="hash"),
        pytest.param("$hash(42, 'MD5')", "T0410", id="hash-of-number"),
        pytest.param("$parse('{not json')", "$parse: the argument is not valid JSON", id="parse-invalid"),
        pytest.param("$parse('NaN')", "$parse: the argument is not valid JSON", id="parse-nan"),
        pytest.param("$partition([1, 2], -1)", "$partition: the chunk size must be a positive integer", id="part"),
        pytest.param("$range(0, 10, 0)", "$range: the step must not be zero", id="range-step"),
        pytest.param("$eval('1 + 1')", "T1006", id="eval-is-not-available"),
    ],
)
def test_invalid_calls_fail_with_query_evaluation_error(sfn: Any, expression: str, in_cause: str) -> None:
    execution = run(sfn, pass_output({"x": f"{{% {expression} %}}"}), {})
    assert execution.status == "FAILED"
    assert execution.error == QUERY_EVALUATION_ERROR
    assert execution.cause is not None
    assert in_cause in execution.cause


def test_dollar_is_the_context_inside_paths_and_refused_at_the_top_level(sfn: Any) -> None:
    """'$' in a predicate or a path step is the current item; at the top level AWS has no context to read."""
    machine = pass_output({"big": "{% $states.input.items[$ > 1] %}", "doubled": "{% $states.input.items.($ * 2) %}"})
    nested = run(sfn, machine, {"items": [1, 2, 3]}, name="nested")
    assert nested.status == "SUCCEEDED", nested.cause
    assert nested.output == {"big": [2, 3], "doubled": [2, 4, 6]}
    for name, expression in (("dollar", "$.items"), ("root", "$$.items"), ("in-object", "{'a': $}")):
        refused = run(sfn, pass_output({"x": f"{{% {expression} %}}"}), {"items": [1]}, name=name)
        assert refused.status == "FAILED", expression
        assert refused.error == QUERY_EVALUATION_ERROR
        assert refused.cause is not None
        assert f"The JSONata expression '{expression}' refers to '" in refused.cause


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("$partition([], 2)", id="partition-empty"),
        pytest.param("$partition([1, 2], 0)", id="partition-zero"),
        pytest.param("$range(10, 0, 1)", id="range-step-away"),
    ],
)
def test_empty_results_are_undefined(sfn: Any, expression: str) -> None:
    execution = run(sfn, pass_output({"x": f"{{% {expression} %}}"}), {})
    assert execution.status == "FAILED"
    assert execution.cause is not None
    assert execution.cause.endswith(f"The JSONata expression '{expression}' returned nothing (undefined).")


def test_jsonpath_states_read_workflow_variables(sfn: Any) -> None:
    """In JSONPath states, '$var' references (Parameters, Choice Variable) read the workflow variables."""
    definition = {
        "StartAt": "Remember",
        "States": {
            "Remember": {"Type": "Pass", "Assign": {"limits.$": "$.limits"}, "Next": "Gate"},
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Variable": "$limits.max", "NumericGreaterThan": 2, "Next": "Read"}],
                "Default": "Closed",
            },
            "Read": {
                "Type": "Pass",
                "Parameters": {"max.$": "$limits.max", "label.$": "$limits.label", "all.$": "$limits"},
                "End": True,
            },
            "Closed": {"Type": "Fail", "Error": "Gate.Closed"},
        },
    }
    limits = {"max": 3, "label": 'say "hi"\nthere \\ ✓'}
    execution = run(sfn, definition, {"limits": limits})
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"max": 3, "label": limits["label"], "all": limits}


def test_runaway_expression_is_stopped_by_the_time_limit(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tail-recursive loop never ends by itself; the adapter's time limit fails it with JSONata's D1012."""
    monkeypatch.setattr(jsonata_adapter, "EVALUATION_TIME_LIMIT_SECONDS", 0.5)
    execution = run(sfn, pass_output({"x": "{% ($loop := function($n) { $loop($n + 1) }; $loop(0)) %}"}), {})
    assert execution.status == "FAILED"
    assert execution.error == QUERY_EVALUATION_ERROR
    assert execution.cause is not None
    assert "D1012" in execution.cause
