"""CodeBuild: `codebuild:startBuild.sync` really builds, on this machine, the commit it is asked for.

AWS
    CodeBuild checks the source version out in a fresh container and runs buildspec.yml phase by phase
    (install, pre_build, build, post_build) in one shell, exporting the variables the buildspec lists; the
    project's buildspec builds the training image with docker, pushes it to ECR and exports its digest.
Locally
    adapter.py records the build in moto's CodeBuild and runs it on a thread with executor.py: the commit is
    cloned from the local git repository, buildspec.py reads the buildspec with CodeBuild's rules, and
    driver.sh runs its commands in one bash with CodeBuild's phase transitions (driver.py). The build's
    `docker` and `aws` are stubs (stubs/) that answer from the emulator's ECR, so the registry step runs as
    written. provisioning.py creates the project (BuildProjectSpec).
How it differs
    No container: the commands run on this machine with the venv's Python (runtime-versions are not applied),
    and a docker image is its build context, not a filesystem built from the Dockerfile. The build's `python`
    (python3, python3.13) is a launcher first on its PATH (warm.py, sagepipe.local.warm_start): `python -m
    pytest`, `python -m pip` and the scripts the tests start with sys.executable are forked from a server that
    has imported what the build's Python imports (scikit-learn, pytest...), where CodeBuild starts a fresh
    interpreter in a fresh container each time; what they see is otherwise the same, and the build runs cold
    when no warm start can be had.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from sagepipe.local.codebuild import adapter

    adapter.install()


def task() -> Any:
    """The Step Functions task class of `codebuild:*` resources (wired by sagepipe.local.services)."""
    from sagepipe.local.codebuild.adapter import CodeBuildTask

    return CodeBuildTask()
