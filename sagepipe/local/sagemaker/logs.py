"""Where a local training job writes its log: one rule for the adapter that writes it and the runner that reads it."""

from __future__ import annotations

from pathlib import Path


def training_log(logs_dir: Path, job_name: str) -> Path:
    """Where a local training job writes its log: under the emulator's logs directory, named by the job.
    `sagepipe local run` reads it there, from another process too."""
    return logs_dir / "sagemaker" / f"{job_name}.log"
