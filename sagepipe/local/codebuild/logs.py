"""Where a local build writes its log: one rule for the adapter that writes it and the runner that reads it."""

from __future__ import annotations

from pathlib import Path


def build_log(logs_dir: Path, build_id: str) -> Path:
    """Where a local build writes its log: under the emulator's logs directory, named by the build id's UUID
    (the part after the project name). `sagepipe local run` reads it there, from another process too."""
    return logs_dir / "codebuild" / f"{build_id.rsplit(':', maxsplit=1)[-1]}.log"
