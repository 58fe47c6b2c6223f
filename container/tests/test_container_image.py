"""The image's build files keep the contract that no Docker engine checks in this test run."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

CONTAINER_DIR = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")


def meaningful_lines(name: str) -> list[str]:
    text = (CONTAINER_DIR / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in meaningful_lines(name):
        match = PIN.match(line)
        assert match, f"{name}: {line!r} is not pinned as name==version"
        found[normalise(match["name"])] = match["version"]
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dockerfile() -> str:
    return (CONTAINER_DIR / "Dockerfile").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-toolkit.txt", "requirements-test.txt"])
def test_every_requirement_is_pinned_exactly(name) -> None:
    # Given a requirements file, then each of its lines is name==version (pins() asserts it)
    assert pins(name)


def test_image_pins_match_the_environment_running_the_tests() -> None:
    # Given the ML stack pinned for the image, then this environment (the dev venv, or CodeBuild's
    # install of requirements.txt) has exactly those versions: the tests vouch for what ships.
    for name, version in pins("requirements.txt").items():
        assert metadata.version(name) == version, name


def test_toolkit_lock_pins_the_toolkit_and_repeats_no_ml_pin() -> None:
    toolkit = pins("requirements-toolkit.txt")
    assert "sagemaker-training" in toolkit
    # A package pinned in both files could be pinned to two versions, and pip would refuse.
    assert not set(toolkit) & set(pins("requirements.txt"))


def test_base_image_is_pinned_by_exact_python_version() -> None:
    # Given the Dockerfile, then its base is Docker's official python:<major>.<minor>.<patch>-<variant>
    # (optionally with a digest) from its ECR Public mirror, not Docker Hub, and both stages use it so
    # the copied virtualenv's interpreter exists
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile(), re.MULTILINE)
    assert default, "no ARG PYTHON_IMAGE default"
    assert re.fullmatch(
        r"public\.ecr\.aws/docker/library/python:3\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", default[1]
    )
    stages = re.findall(r"^FROM (\S+)", dockerfile(), re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_image_runs_train_py_through_the_toolkit() -> None:
    text = dockerfile()
    assert "COPY train.py /opt/ml/code/train.py" in text
    for setting in ("SAGEMAKER_PROGRAM=train.py", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"):
        assert re.search(rf"^\s+{re.escape(setting)}\b", text, re.MULTILINE), setting
    # `docker run <image> train` must reach the toolkit's `train` command, so nothing may
    # replace the command line SageMaker passes.
    assert not re.search(r"^(ENTRYPOINT|CMD)\b", text, re.MULTILINE)
    # The toolkit would pip-install a requirements.txt found in /opt/ml/code at job start.
    assert not re.search(r"COPY .*requirements.*/opt/ml/code", text)


def test_dockerignore_admits_exactly_what_the_dockerfile_copies() -> None:
    lines = meaningful_lines(".dockerignore")
    assert lines[0] == "*", "the context should start from nothing, so tests and caches stay out"
    admitted = {line.removeprefix("!") for line in lines[1:]}
    copied = set()
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.MULTILINE):
        copied.update(sources.split())
    assert admitted == copied
    assert all((CONTAINER_DIR / name).is_file() for name in copied)
