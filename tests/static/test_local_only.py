"""Fault injection and the local clock are test tooling of the local runtime: nothing deployed can reach them."""

import re
from pathlib import Path

import pytest

from sagepipe.template import PROJECT_ROOT

DEPLOYED = ["template.yaml", "buildspec.yml", "statemachine", "functions", "container"]
LOCAL_ONLY = re.compile(r"sagepipe\.local|sagepipe/local|FaultPlan|fault_injection|LocalClock|retry_scale|\bfaults\.")


def _deployed_files() -> list[Path]:
    files: list[Path] = []
    for name in DEPLOYED:
        path = PROJECT_ROOT / name
        files += [path] if path.is_file() else [item for item in sorted(path.rglob("*")) if item.is_file()]
    return [path for path in files if "__pycache__" not in path.parts and path.suffix != ".pyc"]


@pytest.mark.parametrize("path", _deployed_files(), ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_nothing_deployed_refers_to_the_local_runtime_or_its_faults(path: Path) -> None:
    """What sam deploy ships (the template, the state machine, the functions, the image and its build) names
    neither the local runtime nor its fault plan or clock: a deployed stack has no switch for them."""
    text = path.read_text(encoding="utf-8", errors="replace")
    found = LOCAL_ONLY.search(text)
    assert found is None, f"{path.relative_to(PROJECT_ROOT)} refers to {found.group(0)!r}"


def test_the_command_line_has_no_way_to_arm_faults() -> None:
    """Faults are armed through the Python API of a running local runtime only (tests), never from the CLI."""
    cli = (PROJECT_ROOT / "sagepipe" / "cli.py").read_text(encoding="utf-8")
    assert re.search(r"\bfaults?\b|FaultPlan|sagepipe\.local\.faults|retry_scale", cli) is None
