"""Trigger figures on the local runtime: a delivery storm, and what each kind of run costs.

    .venv/bin/python bench/trigger_storm.py [--deliveries 1000] [--storm-only]

Prints plain lines (quoted in the README):
- the storm: one data upload, then the same S3 event delivered again and again through EventBridge (as an
  at-least-once delivery would); events routed per second, how long until every execution ended, the CPU time
  this process (the emulator, its executions and its Lambda functions; no child process) spent meanwhile, per
  redelivery, and the outcome: how many training jobs and duplicate records (after the runs below, the storm's
  bytes were trained on already: no training job, one CACHED run and the rest DUPLICATE; with --storm-only, one
  training job);
- state transitions and Lambda invocations per run: the first data upload (build, training, gate, registration),
  a data-only run and CodeCommit and GitHub pushes of the same training tree (each ends CACHED: the same bytes,
  the same image), a manual run, and a duplicate delivery;
- the orchestration cost per run from the transitions, at Standard workflows' $0.025 per 1,000.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sagepipe.local.core import context
from sagepipe.local.git import git
from sagepipe.local.replay import deliver_webhook
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.template import PROJECT_ROOT

PRICE_PER_TRANSITION = 0.025 / 1000
IDENTITY = ("-c", "user.name=sagepipe-bench", "-c", "user.email=bench@example.com")


def transitions(result: RunResult) -> int:
    """Billed state transitions: one per state entered."""
    return sum(1 for event in result.history if event["type"].endswith("StateEntered"))


def lambda_invocations(result: RunResult) -> int:
    return sum(
        1
        for event in result.history
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "lambda"
    )


def same_tree_commit(repository: Path, parent: str, message: str) -> str:
    """A new commit with the parent's tree: a fresh SHA to build, at no cost of changing the code."""
    return git(repository, *IDENTITY, "commit-tree", f"{parent}^{{tree}}", "-p", parent, "-m", message)


def follow_one(pipeline: LocalPipeline, marker: int) -> RunResult:
    (arn,) = pipeline.started_since(marker, timeout=30)
    return pipeline.follow(arn, timeout=300)


def storm(pipeline: LocalPipeline, data: Path, deliveries: int) -> None:
    sagemaker = pipeline.emulator.client("sagemaker")
    jobs_before = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    records_before = scan_statuses(pipeline)
    marker = pipeline.execution_marker()
    pipeline.upload_data(data, "datasets/storm.csv")
    event = context.current().wait_for_executions(marker, 1, timeout=30)[0].event
    started, cpu_started = time.perf_counter(), time.process_time()
    pipeline.redeliver(event, deliveries - 1)
    routed = time.perf_counter() - started
    pipeline.started_since(marker, count=deliveries, timeout=120)
    pipeline.wait_until_idle(timeout=900)
    settled = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # every thread of this process (the emulator's), no child process
    sfn = pipeline.emulator.client("stepfunctions")
    machine = pipeline.stack.outputs["PipelineStateMachineArn"]
    statuses: Counter[str] = Counter()
    for arn in (item.execution_arn for item in context.current().executions_since(marker)):
        statuses[sfn.describe_execution(executionArn=arn)["status"]] += 1
    jobs = len(sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) - jobs_before
    records = scan_statuses(pipeline) - records_before
    print(f"storm: {deliveries} deliveries of one data version ({machine.rsplit(':', 1)[-1]})")
    rate = (deliveries - 1) / routed
    print(f"  events routed: {deliveries - 1} redeliveries in {routed:.1f} s = {rate:.0f} events/s")
    print(f"  every execution ended {settled:.1f} s after the first redelivery: {dict(statuses)}")
    per_delivery = 1000 * cpu / max(deliveries - 1, 1)
    print(f"  CPU of the emulator's process meanwhile: {cpu:.1f} s, {per_delivery:.0f} ms per redelivery")
    print(f"  training jobs started by the storm: {jobs}; its records: {dict(records)}")


def scan_statuses(pipeline: LocalPipeline) -> Counter[str]:
    dynamodb = pipeline.emulator.client("dynamodb")
    statuses: Counter[str] = Counter()
    kwargs: dict[str, Any] = {"TableName": pipeline.stack.outputs["RunsTableName"]}
    for _ in range(10_000):
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            if item["sk"]["S"] == "RECORD" and item["pk"]["S"].startswith("RUN#"):
                statuses[item["status"]["S"]] += 1
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return statuses


def report(kind: str, result: RunResult) -> None:
    count = transitions(result)
    status = (result.record or {}).get("status", result.status)
    print(
        f"{kind}: {count} state transitions, {lambda_invocations(result)} Lambda invocations in the workflow, "
        f"${count * PRICE_PER_TRANSITION:.6f} orchestration ({status})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument(
        "--storm-only",
        action="store_true",
        help="push HEAD, then the storm (its first delivery trains): what `make profile-storm` records",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        data = write_breast_cancer_csv(state / "breast-cancer.csv")
        # Commits made by the bench go to a scratch clone, never into the working repository.
        repository = state / "training-code"
        git(state, "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(repository))
        head = git(repository, "rev-parse", "HEAD")
        with LocalPipeline.running(state, repository=repository) as pipeline:
            marker = pipeline.execution_marker()
            pipeline.push_commit(head)
            report("code push, no data yet", follow_one(pipeline, marker))
            if args.storm_only:
                storm(pipeline, data, args.deliveries)
                return
            marker = pipeline.execution_marker()
            pipeline.upload_data(data, "datasets/first.csv")
            report("first data upload (build, training, gate, registration)", follow_one(pipeline, marker))
            marker = pipeline.execution_marker()
            pipeline.upload_data(data, "datasets/second.csv")
            report("data-only run, same bytes (CACHED)", follow_one(pipeline, marker))

            commit = same_tree_commit(repository, head, "bench: CodeCommit push")
            marker = pipeline.execution_marker()
            pipeline.push_commit(commit)
            report("CodeCommit push, same tree (retag; CACHED)", follow_one(pipeline, marker))

            delivery = json.loads((PROJECT_ROOT / "events" / "github-push.json").read_text(encoding="utf-8"))
            commit = same_tree_commit(repository, head, "bench: GitHub push")
            body = delivery["body"] | {"after": commit, "ref": f"refs/heads/{pipeline.stack.parameters['CodeBranch']}"}
            body["repository"] = body["repository"] | {"full_name": pipeline.stack.parameters["CodeRepositoryName"]}
            body["head_commit"] = body["head_commit"] | {"id": commit}
            marker = pipeline.execution_marker()
            deliver_webhook(pipeline, delivery["headers"], json.dumps(body).encode())
            result = follow_one(pipeline, marker)
            # Its image tree is unknown before a build: the build finds the tree's image and only tags it.
            report("GitHub push, same tree (a build that only tags; CACHED; +1 webhook call)", result)

            versions = pipeline.emulator.client("s3").list_object_versions(
                Bucket=pipeline.data_bucket, Prefix="datasets/second.csv"
            )["Versions"]
            marker = pipeline.execution_marker()
            pipeline.put_event(
                "sagepipe.manual",
                "Manual Run Requested",
                {
                    "commit": head,
                    "requestedBy": "bench",
                    "data": {
                        "bucket": pipeline.data_bucket,
                        "key": "datasets/second.csv",
                        "versionId": versions[0]["VersionId"],
                    },
                },
            )
            report("manual run (same commit and data: a duplicate)", follow_one(pipeline, marker))

            storm(pipeline, data, args.deliveries)


if __name__ == "__main__":
    main()
