"""Pins that must agree: the emulator's moto version, and the packages local builds install offline."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from sagepipe.local.core.moto_internals import PINNED_MOTO_VERSION
from sagepipe.template import PROJECT_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+?)(\[[^\]]*\])?==([^\s;#]+)")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def test_moto_is_pinned_exactly_to_the_version_the_adapters_were_written_for() -> None:
    assert _pins(PROJECT_ROOT / "requirements" / "dev.txt")["moto"] == PINNED_MOTO_VERSION
    direct = (PROJECT_ROOT / "requirements" / "dev.in").read_text(encoding="utf-8")
    assert re.search(rf"^moto\[[^\]]*\]=={re.escape(PINNED_MOTO_VERSION)}$", direct, re.MULTILINE)
    assert version("moto") == PINNED_MOTO_VERSION


@pytest.mark.parametrize(
    "requirements",
    ["container/requirements.txt", "container/requirements-test.txt", "functions/dependencies/requirements.txt"],
)
def test_runtime_pins_are_the_development_environment_pins(requirements: str) -> None:
    """Local builds install container requirements with no index: they must already be in the venv, at the
    same versions (and the functions run in process against the venv's packages)."""
    wanted = _pins(PROJECT_ROOT / requirements)
    assert wanted, f"{requirements} pins nothing"
    locked = _pins(PROJECT_ROOT / "requirements" / "dev.txt")
    mismatched = {name: (pin, locked.get(name)) for name, pin in wanted.items() if locked.get(name) != pin}
    assert not mismatched, f"{requirements} disagrees with requirements/dev.txt: {mismatched}"
