"""The quality gate and the model registry on the local runtime: a transcript, and what each kind of run costs.

    .venv/bin/python bench/model_gate.py

Starts the emulator with a stack whose gate needs validation:roc_auc >= 0.9 and whose training is modest (two
stumps), then: a code push and a data upload (the first model: registered, pending); `sagepipe models list`;
`sagepipe models approve 1`; a re-run with one stump (a worse model: REJECTED); a re-run with 20 trees (a better
model: registered); `sagepipe models list`, `champion` and `reject 2`; the first run's training asked for again
(CACHED: the champion's own model, which passes and registers nothing) and the worse one's (CACHED: the champion
still rejects it). Every `sagepipe` command runs as its own
process against the emulator, as it would against `sagepipe local up`, and is printed with its output (quoted in the
README). Then prints the state transitions, Lambda invocations and orchestration cost of a registered, a rejected
and the two cached runs, counted from their execution histories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sagepipe.local.git import git
from sagepipe.local.process import poll_until
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.manual import DataVersion, Rerun, manual_run_entry
from sagepipe.template import PROJECT_ROOT

PRICE_PER_TRANSITION = 0.025 / 1000
PARAMETERS = {
    "GateThresholds": json.dumps({"validation:roc_auc": {">=": 0.9}}),
    "TrainingHyperparameters": json.dumps({"n_estimators": "2", "max_depth": "1", "learning_rate": "0.1"}),
}
WORSE = {"n_estimators": "1", "max_depth": "1", "learning_rate": "0.1"}
BETTER = {"n_estimators": "20", "max_depth": "2", "learning_rate": "0.1"}


def transitions(result: RunResult) -> int:
    return sum(1 for event in result.history if event["type"].endswith("StateEntered"))


def lambda_invocations(result: RunResult) -> int:
    return sum(
        1
        for event in result.history
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "lambda"
    )


def follow(pipeline: LocalPipeline, marker: int) -> RunResult:
    (arn,) = pipeline.started_since(marker, timeout=30)
    return pipeline.follow(arn, timeout=300)


def sagepipe(pipeline: LocalPipeline, *args: str) -> None:
    """Run `sagepipe ARGS --stack <local stack>` as its own process and print it as a terminal would."""
    environment = os.environ | pipeline.emulator.client_environment()
    command = [str(Path(sys.executable).parent / "sagepipe"), *args, "--stack", pipeline.stack.name]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    print(f"$ sagepipe {' '.join(args)}")
    print((completed.stdout + completed.stderr).rstrip())
    print()


def rerun(pipeline: LocalPipeline, first: dict[str, Any], hyperparameters: dict[str, str]) -> RunResult:
    entry = manual_run_entry(
        first["commit_id"],
        DataVersion(first["data_bucket"], first["data_key"], first["data_version_id"]),
        "bench",
        "bench: another model",
        Rerun(
            of=first["run_id"],
            request_id=str(uuid.uuid4()),
            instance_type=first["instance_type"],
            instance_count=int(first["instance_count"]),
            volume_size_gb=int(first["volume_size_gb"]),
            max_runtime_seconds=int(first["max_runtime_seconds"]),
            hyperparameters=hyperparameters,
        ),
    )
    marker = pipeline.execution_marker()
    pipeline.emulator.client("events").put_events(Entries=[entry])
    return follow(pipeline, marker)


def decisions_recorded(pipeline: LocalPipeline, run_id: str, expected: int) -> None:
    """Wait (bounded) until RecordModelDecision has recorded `expected` decisions on the run."""
    dynamodb = pipeline.emulator.client("dynamodb")

    def enough() -> bool:
        items = dynamodb.query(
            TableName=pipeline.stack.outputs["RunsTableName"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}, ":prefix": {"S": "APPROVAL#"}},
        )["Items"]
        return len(items) >= expected

    poll_until(enough, timeout=30)


def describe(kind: str, result: RunResult) -> str:
    count = transitions(result)
    record = result.record or {}
    return (
        f"{kind}: {count} state transitions, {lambda_invocations(result)} Lambda invocations in the workflow, "
        f"${count * PRICE_PER_TRANSITION:.6f} orchestration ({record.get('status', result.status)})"
    )


def cached_summary(result: RunResult) -> str:
    """A cached run in one line: its source, the gate's verdict on the cached model, and its package."""
    record = result.record or {}
    how = "reused" if record.get("model_package_reused") else "registered"
    package = (
        f"version {record['model_package_version']} ({how})" if "model_package_version" in record else "no package"
    )
    gate = record.get("gate", {})
    verdict = "passed" if gate.get("passed") else "rejected"
    return (
        f"{record.get('status')} from run {record.get('cached_from')}; gate {verdict}: {gate.get('summary')}; {package}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        data = write_breast_cancer_csv(state / "breast-cancer.csv")
        repository = state / "training-code"
        git(state, "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(repository))
        with LocalPipeline.running(state, repository=repository, parameters=PARAMETERS) as pipeline:
            marker = pipeline.execution_marker()
            pipeline.push_commit(git(repository, "rev-parse", "HEAD"))
            follow(pipeline, marker)
            marker = pipeline.execution_marker()
            pipeline.upload_data(data)
            registered = follow(pipeline, marker)
            first = registered.record or {}
            print(f"# run {first.get('run_id')}: {first.get('status')}, gate: {first.get('gate', {}).get('summary')}")
            print()
            sagepipe(pipeline, "models", "list")
            sagepipe(pipeline, "models", "approve", "1", "--reason", "first model, reviewed")
            decisions_recorded(pipeline, str(first["run_id"]), 2)
            worse = rerun(pipeline, first, WORSE)
            print(f"# a re-run with {json.dumps(WORSE)}: {(worse.record or {}).get('status')}")
            print(f"# rejection_reason: {(worse.record or {}).get('rejection_reason')}")
            print()
            better = rerun(pipeline, first, BETTER)
            print(f"# a re-run with {json.dumps(BETTER)}: {(better.record or {}).get('status')}")
            print()
            sagepipe(pipeline, "models", "list")
            sagepipe(pipeline, "models", "champion")
            sagepipe(pipeline, "models", "reject", "2", "--reason", "fails the fairness review")
            decisions_recorded(pipeline, str((better.record or {})["run_id"]), 2)
            again = rerun(pipeline, first, json.loads(PARAMETERS["TrainingHyperparameters"]))
            print(f"# the first run's training asked for again: {cached_summary(again)}")
            worse_again = rerun(pipeline, first, WORSE)
            print(f"# the worse run's training asked for again: {cached_summary(worse_again)}")
            print()
            print(describe("data upload, first for the commit (build + training + registration)", registered))
            print(describe("re-run, a better model (image reused; registered)", better))
            print(describe("re-run, a worse model (image reused; REJECTED)", worse))
            print(describe("re-run of the champion's training (CACHED, passed, package reused)", again))
            print(describe("re-run of the worse training (CACHED, rejected by the gate)", worse_again))


if __name__ == "__main__":
    main()
