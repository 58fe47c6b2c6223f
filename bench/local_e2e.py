"""Local end-to-end time against the bare training script, on the same data, in the same run.

    .venv/bin/python bench/local_e2e.py [--runs 5]

Prints plain lines (quoted in the README):
- emulator start and stack provisioning;
- a cold run: code push, then a data upload that builds the image and trains;
- warm runs: a data upload for the same commit (the image exists, so no build), from S3 PutObject to the
  execution's end, each of bytes no run has trained on (the data without one row), so that each trains;
- the bare training script (python container/train.py with the SM_* layout) on the same CSV;
- the orchestration overhead: median warm run minus median bare script. The goal is at most 1.0 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagepipe.local.git import git
from sagepipe.local.runner import LocalPipeline
from sagepipe.local.sample_data import write_breast_cancer_csv
from sagepipe.template import PROJECT_ROOT

OVERHEAD_GOAL_SECONDS = 1.0


def bare_training(data: Path, hyperparameters: dict[str, str]) -> float:
    """Seconds for `python train.py` alone, with the same data and hyperparameters, in a fresh /opt/ml tree."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        channel = root / "input" / "data" / "train"
        channel.mkdir(parents=True)
        (channel / data.name).write_bytes(data.read_bytes())
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": scratch,
            "SM_CHANNEL_TRAIN": str(channel),
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_OUTPUT_DIR": str(root / "output"),
        }
        arguments = [item for name, value in sorted(hyperparameters.items()) for item in (f"--{name}", value)]
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "container" / "train.py"), *arguments],
            env=environment,
            check=True,
            capture_output=True,
            timeout=120,
        )
        return time.perf_counter() - started


def without_row(data: Path, index: int, directory: Path) -> Path:
    """The CSV without its data row `index`: new bytes for the training cache, nearly the same training work."""
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    variant = directory / f"variant-{index}.csv"
    variant.write_text("".join(lines[: index + 1] + lines[index + 2 :]), encoding="utf-8")
    return variant


def timed_upload(pipeline: LocalPipeline, data: Path, key: str) -> tuple[float, str]:
    marker = pipeline.execution_marker()
    started = time.perf_counter()
    pipeline.upload_data(data, key)
    (arn,) = pipeline.started_since(marker)
    result = pipeline.follow(arn, timeout=300)
    elapsed = time.perf_counter() - started
    record_status = (result.record or {}).get("status")
    if result.status != "SUCCEEDED" or record_status != "SUCCEEDED":
        raise SystemExit(f"run {result.run_id} ended {result.status} ({record_status}): {result.error} {result.cause}")
    return elapsed, result.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs and bare-script runs to take the median of")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        data = write_breast_cancer_csv(state / "breast-cancer.csv")
        commit = git(PROJECT_ROOT, "rev-parse", "HEAD")

        started = time.perf_counter()
        with LocalPipeline.running(state) as pipeline:
            boot = time.perf_counter() - started
            print(f"emulator start + provisioning: {boot:.2f} s")

            marker = pipeline.execution_marker()
            cold_started = time.perf_counter()
            pipeline.push_commit(commit)
            (push_arn,) = pipeline.started_since(marker)
            pipeline.follow(push_arn, timeout=60)
            cold, _ = timed_upload(pipeline, data, "datasets/cold.csv")
            print(f"cold run (code push, then upload: build + training): {time.perf_counter() - cold_started:.2f} s")
            print(f"  of which the data run: {cold:.2f} s")

            # Each warm run uploads bytes no run has trained on (the same bytes again would end CACHED, with no
            # training at all), and the bare script trains on the same bytes.
            variants = [without_row(data, index, state) for index in range(args.runs)]
            warm = [timed_upload(pipeline, variant, f"datasets/warm-{variant.name}")[0] for variant in variants]
            hyperparameters = hyperparameters_of(pipeline)
        bare = [bare_training(variant, hyperparameters) for variant in variants]

    warm_median, bare_median = statistics.median(warm), statistics.median(bare)
    overhead = warm_median - bare_median
    print(
        f"warm run (image reused), upload to end: median {warm_median:.2f} s over {args.runs} "
        f"(min {min(warm):.2f}, max {max(warm):.2f})"
    )
    print(
        f"bare training script, same data: median {bare_median:.2f} s over {args.runs} "
        f"(min {min(bare):.2f}, max {max(bare):.2f})"
    )
    verdict = "within" if overhead <= OVERHEAD_GOAL_SECONDS else "OVER"
    print(f"orchestration overhead: {overhead:.2f} s ({verdict} the {OVERHEAD_GOAL_SECONDS:.1f} s goal)")


def hyperparameters_of(pipeline: LocalPipeline) -> dict[str, str]:
    """The hyperparameters the stack's runs use (the template's TrainingHyperparameters)."""
    raw = json.loads(str(pipeline.stack.parameters["TrainingHyperparameters"]))
    return {str(name): str(value) for name, value in raw.items()}


if __name__ == "__main__":
    main()
