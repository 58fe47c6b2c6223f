"""Packaging: pyproject.toml declares what the sagepipe package imports, pins moto as the adapters need, and
`pip install .` gives a working `sagepipe` command."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import venv
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from sagepipe.cli import EXIT_NO_PROJECT
from sagepipe.template import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DEPENDENCIES: list[str] = PYPROJECT["project"]["dependencies"]
NOT_IMPORTED_BY_SAGEPIPE = {"aws-lambda-powertools", "pydantic", "pydantic-settings", "sagemaker-training"}
"""Declared for the handlers of functions/, which the local Lambda runtime imports in process, and for the training
toolkit, whose `train` entry point the local SageMaker runs."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, str]:
    """Distribution name (normalised) -> the requirement as written."""
    return {normalise(re.split(r"[\[=<>!~; ]", item, maxsplit=1)[0]): item for item in DEPENDENCIES}


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (PROJECT_ROOT / "sagepipe").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "sagepipe"}


def test_every_import_of_the_sagepipe_package_is_a_declared_dependency() -> None:
    """Given the third-party modules sagepipe/**.py imports (at module level or inside functions), then each one's
    distribution is in [project.dependencies]; and nothing is declared that neither sagepipe nor the functions
    it runs imports."""
    distributions = packages_distributions()
    needed = {
        module: normalise(distributions[module][0]) if module in distributions else module
        for module in imported_top_level_modules()
    }
    missing = {module: distribution for module, distribution in needed.items() if distribution not in declared()}
    assert missing == {}, f"imported by sagepipe but not in pyproject.toml's dependencies: {missing}"
    unused = set(declared()) - set(needed.values()) - NOT_IMPORTED_BY_SAGEPIPE
    assert unused == set(), f"declared in pyproject.toml but imported by nothing: {sorted(unused)}"


def test_moto_is_pinned_exactly_with_the_extras_of_the_development_requirements() -> None:
    """The adapters rely on internals of exactly one moto version (tests/contract): the package pins it too."""
    development = next(
        line.strip()
        for line in (PROJECT_ROOT / "requirements" / "dev.in").read_text(encoding="utf-8").splitlines()
        if line.startswith("moto[")
    )
    assert declared()["moto"] == development
    assert development.endswith("==5.2.5")


def test_the_training_toolkit_is_the_version_the_image_pins() -> None:
    """The local SageMaker runs the toolkit's `train` as the image does: the package pins the image's version."""
    image = next(
        line.strip()
        for line in (PROJECT_ROOT / "container" / "requirements-toolkit.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("sagemaker-training==")
    )
    assert declared()["sagemaker-training"] == image


def test_graphviz_the_python_package_is_not_a_dependency() -> None:
    """graph.py runs Graphviz's `dot` program; nothing imports the graphviz Python package."""
    assert "graphviz" not in declared()
    assert "graphviz" not in imported_top_level_modules()
    assert "graphviz" not in (PROJECT_ROOT / "requirements" / "dev.in").read_text(encoding="utf-8").split()


def test_every_file_the_package_runs_that_is_not_python_is_package_data() -> None:
    """Given the local build's shell scripts (driver.sh, the docker/aws stub), then each one's package lists it in
    [tool.setuptools.package-data], so `pip install .` ships it: without it a build could not run at all."""
    package_data: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"]["package-data"]
    scripts = sorted((PROJECT_ROOT / "sagepipe").rglob("*.sh"))
    assert scripts, "the local build's shell scripts have moved: update this test"
    for script in scripts:
        package = ".".join(script.parent.relative_to(PROJECT_ROOT).parts)
        patterns = package_data.get(package, [])
        assert any(script.match(pattern) for pattern in patterns), f"{script} is not package data of {package}"


@pytest.mark.e2e
@pytest.mark.install
def test_pip_install_gives_a_working_sagepipe_command(tmp_path: Path) -> None:
    """Given a fresh virtual environment, when the project is installed into it with pip (from PyPI, not the dev
    venv), then `sagepipe --help` works, it runs from the installed package, and a
    local command run outside any project says so in one line instead of a traceback."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # --no-compile: byte-compiling every installed module (moto alone has thousands) was half of the install's
    # time here, and what it proves is pip's, not the packaging's.
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            str(PROJECT_ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    helped = subprocess.run(
        [str(environment / "bin" / "sagepipe"), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert helped.returncode == 0, helped.stderr
    assert "local" in helped.stdout
    files = subprocess.run(
        [str(python), "-c", "import sagepipe, pathlib; print(pathlib.Path(sagepipe.__file__).parent)"],
        cwd=tmp_path,  # not the project root, whose sagepipe/ `python -c` would import first
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    package = Path(files.stdout.strip())
    assert package.is_relative_to(environment), "sagepipe was imported from the source tree, not the installed copy"

    elsewhere = tmp_path / "not-a-project"
    elsewhere.mkdir()
    outside = subprocess.run(
        [str(environment / "bin" / "sagepipe"), "local", "run"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outside.returncode == EXIT_NO_PROJECT, outside.stderr
    assert outside.stderr.count("\n") == 1, outside.stderr
    assert outside.stderr.startswith("error: no template.yaml in ")
