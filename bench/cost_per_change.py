"""What 20 changes cost: a scripted history replayed on the local runtime, against today's behaviour.

    .venv/bin/python bench/cost_per_change.py [--build-minutes 4] [--training-minutes 10] [--spot-discount 0.7]

The history (docs-only commits, training-code commits, a re-upload of identical data, new data, hyperparameter
changes) runs through the real event path: each change is a CodeCommit push, an S3 upload, or a manual run
carrying a training configuration (the way `sagepipe runs rerun` sends one), on the deployed state machine. For
each change it prints whether a CodeBuild build started, whether a training job started, the training cache's
decision with its reason, the state transitions of the run, and the estimated AWS cost, on-demand and with
managed spot training. Then the totals, against what the same history costs with images keyed by commit and no
training cache ("before": every new commit builds, every run trains).

Prices (us-east-1 list prices, as quoted in the README's "Costs" section, 2026-12-01): CodeBuild
BUILD_GENERAL1_SMALL $0.005 per build minute; SageMaker training ml.m5.large $0.115 per hour; Step Functions
Standard $0.025 per 1,000 state transitions. Managed spot training is billed at the Spot price, which varies
("up to 90%" less than on-demand: SageMaker developer guide, "Managed Spot Training in Amazon SageMaker AI"):
`--spot-discount` is an assumption, printed with the result. Build and training minutes on AWS are assumptions
too (a local build or job takes seconds): `--build-minutes`, `--training-minutes`.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagepipe.local.git import git
from sagepipe.local.runner import LocalPipeline, RunResult
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.template import PROJECT_ROOT

PRICE_DATE = "2026-12-01"
CODEBUILD_PER_MINUTE = 0.005
TRAINING_PER_HOUR = 0.115
PER_TRANSITION = 0.025 / 1000
IDENTITY = ("-c", "user.name=sagepipe-bench", "-c", "user.email=bench@example.com")


@dataclass
class Outcome:
    change: str
    built: bool
    trained: bool
    decision: str
    transitions: int
    built_before: bool
    trained_before: bool


def transitions(result: RunResult) -> int:
    return sum(1 for event in result.history if event["type"].endswith("StateEntered"))


def entered(result: RunResult, state: str) -> bool:
    return any(event.get("stateEnteredEventDetails", {}).get("name") == state for event in result.history)


class History:
    """The scripted changes, applied to a scratch clone and the local stack."""

    def __init__(self, pipeline: LocalPipeline, repository: Path, data: Path, scratch: Path) -> None:
        self.pipeline = pipeline
        self.repository = repository
        self.data = data
        self.scratch = scratch
        self.data_key = "datasets/train.csv"
        self.rows = data.read_text(encoding="utf-8").splitlines(keepends=True)
        self.dropped = 0
        self.commits_with_image: set[str] = set()
        self.last_run: str | None = None
        self.outcomes: list[Outcome] = []

    def _commit(self, message: str, path: str, text: str) -> str:
        target = self.repository / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as file:
            file.write(text)
        git(self.repository, "add", "--all")
        git(self.repository, *IDENTITY, "commit", "-qm", message)
        return git(self.repository, "rev-parse", "HEAD")

    def _follow(self, start: Callable[[], object]) -> RunResult:
        marker = self.pipeline.execution_marker()
        start()
        (arn,) = self.pipeline.started_since(marker, timeout=30)
        result = self.pipeline.follow(arn, timeout=300)
        self.last_run = result.run_id
        return result

    def _record(self, change: str, result: RunResult) -> None:
        record = result.record or {}
        status = str(record.get("status", result.status))
        decision = str(record.get("cache_reason") or record.get("skip_reason") or status)
        # Before: images keyed by commit (a run of a commit not built before builds), and every run with both halves
        # trains.
        runs = status not in {"SKIPPED", "DUPLICATE"}
        built_before = runs and record.get("commit_id") not in self.commits_with_image
        if runs:
            self.commits_with_image.add(str(record.get("commit_id")))
        self.outcomes.append(
            Outcome(
                change,
                built=entered(result, "BuildImage"),
                trained=entered(result, "Train"),
                decision=f"{status}: {decision}",
                transitions=transitions(result),
                built_before=built_before,
                trained_before=runs,
            )
        )

    def push_head(self, change: str) -> None:
        head = git(self.repository, "rev-parse", "HEAD")
        self._record(change, self._follow(lambda: self.pipeline.push_commit(head)))

    def docs_commit(self, change: str) -> None:
        commit = self._commit(change, "docs/notes.md", f"- {uuid.uuid4().hex[:8]}\n")
        self._record(change, self._follow(lambda: self.pipeline.push_commit(commit)))

    def code_commit(self, change: str) -> None:
        commit = self._commit(change, "container/CHANGES.md", f"- {uuid.uuid4().hex[:8]}\n")
        self._record(change, self._follow(lambda: self.pipeline.push_commit(commit)))

    def upload(self, change: str, *, new_bytes: bool) -> None:
        if new_bytes:
            self.dropped += 1
        path = self.scratch / f"data-{self.dropped}.csv"
        path.write_text("".join(self.rows[:1] + self.rows[1 + self.dropped :]), encoding="utf-8")
        result = self._follow(lambda: self.pipeline.upload_data(path, self.data_key))
        self._record(change, result)

    def hyperparameters(self, change: str, values: dict[str, str]) -> None:
        """A manual run with another training configuration (what a redeploy with other TrainingHyperparameters,
        or a re-run carrying one, sends)."""
        head = git(self.repository, "rev-parse", "HEAD")
        versions = self.pipeline.emulator.client("s3").list_object_versions(
            Bucket=self.pipeline.data_bucket, Prefix=self.data_key
        )["Versions"]
        latest = next(version for version in versions if version["IsLatest"])
        parameters = self.pipeline.stack.parameters
        detail: dict[str, Any] = {
            "commit": head,
            "requestedBy": "bench",
            "reason": change,
            "data": {"bucket": self.pipeline.data_bucket, "key": self.data_key, "versionId": latest["VersionId"]},
            "rerunOf": self.last_run,
            "rerunRequestId": str(uuid.uuid4()),
            "training": {
                "instanceType": parameters["TrainingInstanceType"],
                "instanceCount": 1,
                "volumeSizeGb": int(parameters["TrainingVolumeSizeGb"]),
                "maxRuntimeSeconds": int(parameters["TrainingMaxRuntimeSeconds"]),
                "hyperparameters": values,
            },
        }
        result = self._follow(lambda: self.pipeline.put_event("sagepipe.manual", "Manual Run Requested", detail))
        self._record(change, result)


def replay(history: History, defaults: dict[str, str]) -> None:
    tuned = defaults | {"n_estimators": "150"}
    history.push_head("1 push the training code (no data yet)")
    history.upload("2 upload the first dataset", new_bytes=True)
    history.docs_commit("3 docs-only commit: README wording")
    history.docs_commit("4 docs-only commit: a new docs page")
    history.code_commit("5 training-code commit")
    history.upload("6 re-upload identical data (new VersionId)", new_bytes=False)
    history.docs_commit("7 docs-only commit: typo")
    history.upload("8 new data", new_bytes=True)
    history.hyperparameters("9 hyperparameter change: n_estimators 150", tuned)
    history.upload("10 re-upload identical data (new VersionId)", new_bytes=False)
    history.docs_commit("11 docs-only commit: changelog")
    history.code_commit("12 training-code commit")
    history.hyperparameters("13 hyperparameter change: n_estimators 150", tuned)
    history.hyperparameters("14 hyperparameter change back to the defaults", defaults)
    history.upload("15 new data", new_bytes=True)
    history.docs_commit("16 docs-only commit: diagram")
    history.upload("17 re-upload identical data (new VersionId)", new_bytes=False)
    history.code_commit("18 training-code commit")
    history.docs_commit("19 docs-only commit: FAQ")
    history.upload("20 new data", new_bytes=True)


def cost(built: bool, trained: bool, transitions_: int, args: argparse.Namespace, *, spot: bool) -> float:
    training = args.training_minutes / 60 * TRAINING_PER_HOUR * ((1 - args.spot_discount) if spot else 1)
    return (
        (args.build_minutes * CODEBUILD_PER_MINUTE if built else 0.0)
        + (training if trained else 0.0)
        + transitions_ * PER_TRANSITION
    )


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(
        f"assumptions: a build takes {args.build_minutes:g} min, a training job {args.training_minutes:g} billable "
        f"min on ml.m5.large; spot {args.spot_discount:.0%} below on-demand; prices of {PRICE_DATE} (us-east-1): "
        f"CodeBuild ${CODEBUILD_PER_MINUTE}/min, ml.m5.large ${TRAINING_PER_HOUR}/h, "
        f"${PER_TRANSITION * 1000:.3f} per 1,000 transitions"
    )
    print(f"{'change':48} {'build':5} {'train':5} {'trans':>5} {'on-demand':>10} {'spot*':>9}  cache decision")
    totals = {"now": [0.0, 0.0, 0, 0], "before": [0.0, 0.0, 0, 0]}
    for item in outcomes:
        now = cost(item.built, item.trained, item.transitions, args, spot=False)
        now_spot = cost(item.built, item.trained, item.transitions, args, spot=True)
        print(
            f"{item.change[:48]:48} {'yes' if item.built else 'no':5} {'yes' if item.trained else 'no':5} "
            f"{item.transitions:5d} {f'${now:.4f}':>10} {f'${now_spot:.4f}':>9}  {item.decision[:110]}"
        )
        for name, built, trained in (
            ("now", item.built, item.trained),
            ("before", item.built_before, item.trained_before),
        ):
            totals[name][0] += cost(built, trained, item.transitions, args, spot=False)
            totals[name][1] += cost(built, trained, item.transitions, args, spot=True)
            totals[name][2] += int(built)
            totals[name][3] += int(trained)
    for name, label in (("before", "before (images by commit, no cache)"), ("now", "now (images by tree, cache)")):
        on_demand, spot, builds, trainings = totals[name]
        print(
            f"total {label:36}: {builds:2d} builds, {trainings:2d} training jobs, "
            f"${on_demand:.4f} on-demand, ${spot:.4f} spot*"
        )
    saved = 1 - totals["now"][0] / totals["before"][0] if totals["before"][0] else 0.0
    print(f"saved: {saved:.0%} of the on-demand cost (transitions of the before case counted as now's)")
    print("* spot: the same jobs with EnableManagedSpotTraining=true (managed spot training, at the assumed discount)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-minutes", type=float, default=4.0)
    parser.add_argument("--training-minutes", type=float, default=10.0)
    parser.add_argument("--spot-discount", type=float, default=0.7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        data = write_breast_cancer_csv(scratch / "breast-cancer.csv")
        repository = scratch / "training-code"
        git(scratch, "clone", "--quiet", "--no-hardlinks", str(PROJECT_ROOT), str(repository))
        with LocalPipeline.running(scratch, repository=repository) as pipeline:
            import json

            defaults = json.loads(pipeline.stack.parameters["TrainingHyperparameters"])
            history = History(pipeline, repository, data, scratch)
            replay(history, {str(key): str(value) for key, value in defaults.items()})
            report(history.outcomes, args)


if __name__ == "__main__":
    main()
