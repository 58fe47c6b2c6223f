"""What a local training job costs over its program: the toolkit's `train` entry point and the platform around it.

    .venv/bin/python bench/training_overhead.py [--runs 15]

A program that only prints runs, interleaved, as a local SageMaker training job (the image's own entry point,
the sagemaker-training toolkit's `train`, which runs it) started cold (a fresh interpreter), as the same job
started warm (forked from a warm-start server: sagepipe.local.warm_start, as the emulator runs its jobs),
and bare (`python noop.py`). Prints plain lines:
- the median and minimum of each, and their paired differences: each way's start-up overhead;
- the toolkit's import time alone (`import sagemaker_training.cli.train` minus an empty interpreter), and the
  packages that dominate it (`python -X importtime`: each top-level package's first import, cumulative).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagepipe.local.images import image_environment
from sagepipe.local.sagemaker.training import TrainingRequest, run_training
from sagepipe.local.warm_start import WarmStarts
from sagepipe.template import PROJECT_ROOT

NOOP = "print('done')\n"
TOOLKIT_MODULE = "sagemaker_training.cli.train"
IMPORT_TIME = re.compile(r"import time:\s+(?P<self>\d+) \|\s+(?P<cumulative>\d+) \|\s*(?P<name>\S+)")


def job_seconds(root: Path, index: int, code: Path, channel: Path, warm_starts: WarmStarts | None = None) -> float:
    dockerfile = (PROJECT_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8")
    request = TrainingRequest(
        job_name=f"bench-{index}-{'warm' if warm_starts else 'cold'}",
        code_dir=code,
        image_environment={**image_environment(dockerfile), "SAGEMAKER_PROGRAM": "noop.py"},
        hyperparameters={"n_estimators": "200"},
        channels={"train": channel},
        input_data_config=[{"ChannelName": "train"}],
        resource_config={"InstanceType": "ml.m5.large"},
        max_runtime_seconds=600,
        metric_definitions=[],
        work_dir=root / f"job-{index}-{'warm' if warm_starts else 'cold'}",
        log_path=root / f"job-{index}-{'warm' if warm_starts else 'cold'}.log",
        warm_starts=warm_starts,
    )
    started = time.perf_counter()
    result = run_training(request)
    elapsed = time.perf_counter() - started
    if result.status != "Completed":
        raise SystemExit(f"the job ended {result.status}: {result.failure_reason}")
    return elapsed


def bare_seconds(code: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "noop.py"], cwd=code, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


def import_profile(base_dir: Path) -> tuple[float, list[tuple[str, float]]]:
    """Seconds to import the toolkit's entry point, and the packages that cost most (cumulative seconds of each
    top-level package's first import, which includes what it imports first; largest first)."""
    environment = {**os.environ, "SAGEMAKER_BASE_DIR": str(base_dir)}
    empty = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
    empty_seconds = time.perf_counter() - empty
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {TOOLKIT_MODULE}"], env=environment, check=True, timeout=60)
    import_seconds = time.perf_counter() - started - empty_seconds
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {TOOLKIT_MODULE}"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    packages: dict[str, float] = {}
    for line in traced.stderr.splitlines():
        match = IMPORT_TIME.match(line)
        if match and "." not in match["name"] and not match["name"].startswith("_"):
            packages[match["name"]] = int(match["cumulative"]) / 1e6
    return import_seconds, sorted(packages.items(), key=lambda item: -item[1])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="jobs and bare runs to take the median of")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        code = root / "code"
        code.mkdir()
        (code / "noop.py").write_text(NOOP, encoding="utf-8")
        channel = root / "channel"
        channel.mkdir()
        (channel / "data.csv").write_text("x,target\n1,0\n", encoding="utf-8")
        jobs: list[float] = []
        warm_jobs: list[float] = []
        bare: list[float] = []
        warm_starts = WarmStarts()
        dockerfile = (PROJECT_ROOT / "container" / "Dockerfile").read_text(encoding="utf-8")
        job_environment = {"LANG": "C.UTF-8", **image_environment(dockerfile)}
        if not warm_starts.prepare(Path(sys.executable).parent / "train", job_environment):
            raise SystemExit("the warm-start server did not start")
        try:
            for index in range(args.runs):
                # Rotate the order, so that no side always runs on a warmer machine.
                for offset in range(3):
                    side = (index + offset) % 3
                    if side == 0:
                        bare.append(bare_seconds(code))
                    elif side == 1:
                        jobs.append(job_seconds(root, index, code, channel))
                    else:
                        warm_jobs.append(job_seconds(root, index, code, channel, warm_starts))
        finally:
            warm_starts.close()
        import_seconds, packages = import_profile(root / "job-0-cold" / "opt" / "ml")

    for label, series in (("cold", jobs), ("warm", warm_jobs)):
        median, fastest = statistics.median(series), min(series)
        print(f"local training job, {label} (train -> noop.py): median {median:.2f} s (min {fastest:.2f})")
    print(f"bare python noop.py: median {statistics.median(bare):.2f} s (min {min(bare):.2f})")
    for label, series in (("cold", jobs), ("warm", warm_jobs)):
        paired = statistics.median(job - alone for job, alone in zip(series, bare, strict=True))
        print(f"job start-up overhead, {label}: median {paired:.2f} s over {args.runs} paired runs")
    print(f"toolkit import ({TOOLKIT_MODULE}): {import_seconds:.2f} s; the costliest packages (cumulative):")
    for name, seconds in packages:
        print(f"  {name:<22} {seconds:.3f} s")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
