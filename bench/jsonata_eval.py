"""How long one JSONata field takes to evaluate on moto: the adapter's bindings against moto's source text.

Run with ``.venv/bin/python bench/jsonata_eval.py [--runs N]``. Both sides evaluate the same Arguments
expression, for the same ~20 KB ``$states.input`` and the same workflow variables, through moto's own
``StringJSONata`` component and with jsonata-python:

* ``bindings``: the adapter (``StringJSONata._eval_body`` as installed), which binds ``$states`` and the
  variables as Python objects and reuses the parsed expression;
* ``source text``: moto's original ``StringJSONata._eval_body``, which serialises ``$states`` and every
  variable into ``$name:=<literal>;`` declarations in front of the expression and evaluates that text
  (with the adapter's ``_eval_jsonata``, since moto ships none), parsing it anew each time.

Each line is a median wall-clock time per evaluation, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJSONata
from moto.stepfunctions.parser.asl.eval.states import States
from moto.stepfunctions.parser.asl.eval.variable_store import VariableStore

from sagepipe.local.core.moto_internals import original_attribute
from sagepipe.local.stepfunctions.jsonata import install

ACCOUNT = "123456789012"
ARGUMENTS_EXPRESSION = """{
  "TrainingJobName": $jobPrefix & '-' & $states.context.Execution.Name,
  "AlgorithmSpecification": {"TrainingImage": $config.image, "TrainingInputMode": "File"},
  "HyperParameters": $merge($each($states.input.hyperparameters, function($v, $k) { {$k: $string($v)} })),
  "InputDataConfig": [{
    "ChannelName": "train",
    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": $states.input.dataset.uri}}
  }],
  "ResourceConfig": {"InstanceType": $config.instanceType, "InstanceCount": 1, "VolumeSizeInGB": 30},
  "Tags": $states.input.tags.{"Key": key, "Value": value}
}"""


def state_input() -> dict[str, Any]:
    """A training request carrying a ~20 KB manifest that the expression does not read."""
    return {
        "dataset": {"uri": "s3://sagepipe-data/datasets/churn/v7/", "rows": 120_000},
        "hyperparameters": {"max_depth": 6, "eta": 0.2, "num_round": 200, "objective": "binary:logistic"},
        "tags": [{"key": "project", "value": "churn"}, {"key": "commit", "value": "3f2c9e1"}],
        "manifest": [
            {
                "key": f"datasets/churn/v7/part-{index:05d}.csv",
                "size": 1_048_576 + index,
                "etag": f"{index:032x}",
            }
            for index in range(200)
        ],
    }


def environment(payload: dict[str, Any]) -> Any:
    """The parts of moto's Environment that StringJSONata reads: states, variable_store and stack."""
    states = States(
        context={
            "Execution": {
                "Id": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:train:nightly-42",
                "Input": payload,
                "Name": "nightly-42",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sagepipe",
                "StartTime": datetime.now(tz=UTC).isoformat(),
            },
            "State": {"EnteredTime": datetime.now(tz=UTC).isoformat(), "Name": "Train", "RetryCount": 0},
            "StateMachine": {
                "Id": "arn:aws:states:us-east-1:123456789012:stateMachine:train",
                "Name": "train",
            },
            "Task": None,
            "Map": None,
        }
    )
    states.reset(input_value=payload)
    variables = VariableStore()  # type: ignore[no-untyped-call]  # moto is untyped here
    variables.set("jobPrefix", "churn-xgb")
    variables.set(
        "config",
        {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1.7", "instanceType": "ml.m5.xlarge"},
    )
    return SimpleNamespace(states=states, variable_store=variables, stack=[])


def median_ms(evaluate: Callable[[], Any], runs: int) -> float:
    for _ in range(min(20, runs)):
        evaluate()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        evaluate()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="evaluations per measurement (default 500)")
    runs = parser.parse_args().runs

    install()
    payload = state_input()
    env = environment(payload)
    component = StringJSONata(expression=ARGUMENTS_EXPRESSION)
    adapter_body: Callable[[Any, Any], None] = StringJSONata._eval_body
    moto_body: Callable[[Any, Any], None] = original_attribute(StringJSONata, "_eval_body")

    def with_bindings() -> Any:
        adapter_body(component, env)
        return env.stack.pop()

    def with_source_text() -> Any:
        moto_body(component, env)
        return env.stack.pop()

    if with_bindings() != with_source_text():
        raise SystemExit("the two evaluations disagree; the figures would compare different work")

    input_kb = len(json.dumps(payload)) / 1024
    bindings_ms = median_ms(with_bindings, runs)
    source_ms = median_ms(with_source_text, runs)
    print(f"$states.input: {input_kb:.1f} KB, expression: {len(ARGUMENTS_EXPRESSION)} characters")
    print(f"jsonata eval (bindings): {bindings_ms:.2f} ms median over {runs}")
    print(f"jsonata eval (source text): {source_ms:.2f} ms median over {runs}")
    print(f"speedup: {source_ms / bindings_ms:.0f}x")


if __name__ == "__main__":
    main()
