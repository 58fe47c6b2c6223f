"""The local CodeBuild: a buildspec runs for one commit on this machine, with CodeBuild's semantics.

Each test makes a small git repository with its own buildspec, runs the build, and reads what the build left in
its source directory (files its commands wrote), its phases and its log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sagepipe.local.codebuild.executor import (
    SKIP_LOG_PREFIX,
    BuildError,
    BuildRequest,
    BuildResult,
    Phase,
    is_registry_command,
    run_build,
)
from sagepipe.local.process import poll_until

GIT = shutil.which("git") or "git"
REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_PHASES = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
]


# ---------------------------------------------------------------------------------------------- helpers


def git(repo: Path, *args: str) -> str:
    # A hook's GIT_DIR or GIT_INDEX_FILE would point git at another repository than the test's.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    completed = subprocess.run(
        [GIT, *identity, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return completed.stdout.strip()


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))


def commit(repo: Path, files: Mapping[str, str], message: str = "change") -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(tmp_path: Path, files: Mapping[str, str]) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo, commit(repo, files, "first")


def build(repo: Path, source_version: str | None, tmp_path: Path, name: str = "build", **fields: Any) -> BuildResult:
    fields.setdefault("environment", {})
    fields.setdefault("timeout_seconds", 60)
    request = BuildRequest(
        repository=repo,
        source_version=source_version,
        build_id=f"sagepipe-image-build:{name}",
        work_dir=tmp_path / name,
        log_path=tmp_path / f"{name}.log",
        **fields,
    )
    return run_build(request)


def statuses(result: BuildResult) -> dict[str, str | None]:
    return {phase.phase_type: phase.phase_status for phase in result.phases}


def phase(result: BuildResult, phase_type: str) -> Phase:
    return next(p for p in result.phases if p.phase_type == phase_type)


def read(result: BuildResult, name: str) -> str:
    return (result.source_dir / name).read_text().strip()


def log(result: BuildResult) -> str:
    return result.log_path.read_text()


# ---------------------------------------------------------------------------------------------- phases and the shell


def test_a_passing_build_keeps_one_shell_state_across_commands_and_phases(tmp_path: Path) -> None:
    """Given variables, a cd, a function and an export set in earlier commands and phases,
    when the build runs, then later commands see them all, overrides beat the buildspec's variables,
    and the exported variable comes back while an unset one is left out."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                env:
                  shell: bash
                  variables:
                    GREETING: from-buildspec
                    KEPT: from-buildspec
                  exported-variables:
                    - IMAGE_URI
                    - NEVER_SET
                phases:
                  install:
                    commands:
                      - COUNT=1
                      - mkdir -p out && cd out
                  pre_build:
                    commands:
                      - COUNT=$((COUNT + 1)); export EXPORTED=yes
                      - say() { echo "said $1"; }
                  build:
                    commands:
                      - |
                        if [ "$COUNT" = 2 ]; then
                          IMAGE_URI="example.com/repo@sha256:$COUNT"
                        fi
                      - say "$GREETING $KEPT" > said.txt
                      - echo "$COUNT $EXPORTED $(basename "$PWD") $CODEBUILD_BUILD_SUCCEEDING" > state.txt
                  post_build:
                    commands:
                      - bash -c 'echo "a child process sees $EXPORTED"' > child.txt
            """
        },
    )

    result = build(repo, sha, tmp_path, environment={"GREETING": "from-override"})

    assert result.build_status == "SUCCEEDED", log(result)
    assert [p.phase_type for p in result.phases] == ALL_PHASES
    assert all(p.phase_status == "SUCCEEDED" for p in result.phases[:-1])
    assert result.phases[-1].phase_status is None
    assert read(result, "out/state.txt") == "2 yes out 1"
    assert read(result, "out/said.txt") == "said from-override from-buildspec"
    assert read(result, "out/child.txt") == "a child process sees yes"
    assert result.exported_variables == {"IMAGE_URI": "example.com/repo@sha256:2"}
    assert result.resolved_source_version == sha
    assert result.failure_message is None
    assert result.skipped_commands == ()
    assert "Running command mkdir -p out && cd out" in log(result)
    assert "Phase complete: BUILD State: SUCCEEDED" in log(result)


def test_a_failing_pre_build_command_ends_the_build_before_build_and_post_build(tmp_path: Path) -> None:
    """Given a pre_build command that exits 3, then pre_build fails (its finally still runs), and neither build
    nor post_build runs: the buildspec reference says a failed install (likewise pre_build) runs none of the later
    phases' commands; only a failed *build* goes on to post_build. The message names the command and status."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                env:
                  shell: bash
                phases:
                  pre_build:
                    commands:
                      - echo before > before.txt
                      - exit 3
                      - touch never-run.txt
                    finally:
                      - touch pre-build-finally.txt
                  build:
                    commands:
                      - touch build-ran.txt
                  post_build:
                    commands:
                      - touch post-build-ran.txt
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "FAILED"
    assert statuses(result)["PRE_BUILD"] == "FAILED"
    assert {"BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS"}.isdisjoint(statuses(result))
    assert [p.phase_type for p in result.phases][-2:] == ["FINALIZING", "COMPLETED"]
    assert (result.source_dir / "before.txt").exists()
    assert (result.source_dir / "pre-build-finally.txt").exists()
    for never in ("never-run.txt", "build-ran.txt", "post-build-ran.txt"):
        assert not (result.source_dir / never).exists(), never
    message = "Error while executing command: exit 3. Reason: exit status 3"
    assert phase(result, "PRE_BUILD").contexts == ({"statusCode": "COMMAND_EXECUTION_ERROR", "message": message},)
    assert result.failure_message == f"COMMAND_EXECUTION_ERROR: {message}"
    assert "Phase complete: PRE_BUILD State: FAILED" in log(result)
    assert f"Phase context status code: COMMAND_EXECUTION_ERROR Message: {message}" in log(result)


def test_a_failing_build_command_still_runs_post_build_with_build_succeeding_zero(tmp_path: Path) -> None:
    """Given a build command that fails, then the rest of build is skipped, post_build runs and sees
    CODEBUILD_BUILD_SUCCEEDING=0 (it was 1 before), UPLOAD_ARTIFACTS is attempted, and the build FAILED."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                env:
                  shell: bash
                phases:
                  install:
                    commands:
                      - echo "$CODEBUILD_BUILD_SUCCEEDING" > install.txt
                  build:
                    commands:
                      - "false"
                      - touch never-run.txt
                  post_build:
                    commands:
                      - echo "$CODEBUILD_BUILD_SUCCEEDING" > post-build.txt
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "FAILED"
    assert statuses(result) | {"COMPLETED": None} == {
        "SUBMITTED": "SUCCEEDED",
        "QUEUED": "SUCCEEDED",
        "PROVISIONING": "SUCCEEDED",
        "DOWNLOAD_SOURCE": "SUCCEEDED",
        "INSTALL": "SUCCEEDED",
        "PRE_BUILD": "SUCCEEDED",
        "BUILD": "FAILED",
        "POST_BUILD": "SUCCEEDED",
        "UPLOAD_ARTIFACTS": "SUCCEEDED",
        "FINALIZING": "SUCCEEDED",
        "COMPLETED": None,
    }
    assert read(result, "install.txt") == "1"
    assert read(result, "post-build.txt") == "0"
    assert not (result.source_dir / "never-run.txt").exists()
    assert (
        result.failure_message == "COMMAND_EXECUTION_ERROR: Error while executing command: false. Reason: exit status 1"
    )


def test_on_failure_continue_goes_on_to_the_next_phase_and_the_build_still_fails(tmp_path: Path) -> None:
    """Given pre_build with on-failure: CONTINUE and a failing command, then build and post_build run anyway
    (seeing CODEBUILD_BUILD_SUCCEEDING=0), pre_build is FAILED, and so is the build."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                env:
                  shell: bash
                phases:
                  pre_build:
                    on-failure: CONTINUE
                    commands:
                      - "false"
                  build:
                    commands:
                      - echo "$CODEBUILD_BUILD_SUCCEEDING" > build.txt
                  post_build:
                    commands:
                      - touch post-build-ran.txt
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "FAILED"
    assert statuses(result)["PRE_BUILD"] == "FAILED"
    assert statuses(result)["BUILD"] == "SUCCEEDED"
    assert statuses(result)["POST_BUILD"] == "SUCCEEDED"
    assert read(result, "build.txt") == "0"
    assert (result.source_dir / "post-build-ran.txt").exists()


def test_finally_runs_after_a_failure_and_a_failing_finally_fails_its_phase(tmp_path: Path) -> None:
    """Given a build phase whose first command fails, then its finally still runs and the commands after the
    failure do not; given a post_build whose commands pass but whose finally fails, then post_build FAILED and
    the rest of its finally is skipped. The build's failure message is the first failure's."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                env:
                  shell: bash
                phases:
                  build:
                    commands:
                      - "false"
                      - touch skipped.txt
                    finally:
                      - touch build-finally.txt
                  post_build:
                    commands:
                      - touch post-build-commands.txt
                    finally:
                      - exit 4
                      - touch after-failed-finally.txt
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "FAILED"
    assert (result.source_dir / "build-finally.txt").exists()
    assert (result.source_dir / "post-build-commands.txt").exists()
    assert not (result.source_dir / "skipped.txt").exists()
    assert not (result.source_dir / "after-failed-finally.txt").exists()
    assert statuses(result)["BUILD"] == "FAILED"
    assert statuses(result)["POST_BUILD"] == "FAILED"
    assert phase(result, "POST_BUILD").contexts[0]["message"].endswith("exit 4. Reason: exit status 4")
    assert result.failure_message is not None
    assert "command: false." in result.failure_message


# ---------------------------------------------------------------------------------------------- registry commands


def test_docker_and_aws_commands_are_skipped_logged_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given docker and aws on the build's PATH as programs that fail and leave a mark, when the buildspec runs
    them, then none runs, the build succeeds, each is logged and listed, and the variable a skipped $(aws ...)
    would have set stays unset."""
    fake_bin = tmp_path / "fake-bin"
    marks = tmp_path / "marks"
    marks.mkdir()
    for program in ("docker", "aws"):
        write(fake_bin, {program: f'#!/bin/sh\ntouch "{marks}/{program}-ran"\nexit 1\n'})
        (fake_bin / program).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    registry_commands = [
        "docker build -t local/image .",
        "aws ecr get-login-password | docker login --username AWS --password-stdin example.com",
        "EXISTING=$(aws ecr describe-images --repository-name x)",
        "(cd . && docker push example.com/x:1)",
    ]
    commands = "\n".join(f"      - '{command}'" for command in registry_commands)
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": "version: 0.2\nenv:\n  shell: bash\nphases:\n  pre_build:\n    commands:\n"
            "      - command -v docker > which-docker.txt\n"
            f"{commands}\n"
            '      - echo "existing=[${EXISTING-unset}]" > existing.txt\n'
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "SUCCEEDED", log(result)
    assert read(result, "which-docker.txt") == str(fake_bin / "docker")  # it would have run, had it not been skipped
    assert list(marks.iterdir()) == []
    assert result.skipped_commands == tuple(registry_commands)
    assert read(result, "existing.txt") == "existing=[unset]"
    for command in registry_commands:
        assert f"{SKIP_LOG_PREFIX}{command}\n" in log(result)


@pytest.mark.parametrize(
    ("command", "registry"),
    [
        ("docker build -t image .", True),
        ("aws ecr get-login-password | docker login --password-stdin x", True),
        ("EXISTING=$(aws ecr describe-images --repository-name r)", True),
        ("(cd c && docker build .)", True),
        ('if [ -n "$X" ]; then docker push x; fi', True),
        ("make test || docker pull cache", True),
        ("TAG=`aws ecr list-images`", True),
        ("DOCKER_BUILDKIT=1 docker build .", True),
        ("/usr/bin/docker version", True),
        ('echo "$(aws sts get-caller-identity)"', True),
        ("for t in a b; do docker tag x $t; done", True),
        ("sudo -E docker ps", True),
        ("if true\nthen\n  docker build .\nfi", True),
        ("diff <(aws s3 ls) expected.txt", True),
        ("2>/dev/null docker ps", True),
        ("command docker ps", True),
        ("command -v docker > /dev/null || echo no docker", False),
        ("IMAGE_TAG=${IMAGE_TAG:-x}", False),
        ('IMAGE_TAG="${IMAGE_TAG:-$CODEBUILD_RESOLVED_SOURCE_VERSION}"', False),
        ("echo docker build", False),
        ("awsome --flag", False),
        ("dockerfile-lint Dockerfile", False),
        ("echo 'aws; docker'", False),
        ('echo "run docker; then aws"', False),
        ("python -m pytest  # then docker build", False),
        ("grep -r aws .", False),
        ("cat <<EOF > notes.txt\ndocker build .\nEOF", False),
        ("cat <<'EOF' > notes.txt\naws s3 ls\nEOF\ndocker push x", True),
        ("echo $((1 + 2))", False),
    ],
)
def test_is_registry_command(command: str, registry: bool) -> None:
    assert is_registry_command(command) is registry


# ---------------------------------------------------------------------------------------------- the source


def test_an_unknown_commit_fails_download_source(tmp_path: Path) -> None:
    """Given a commit the repository does not have, then the build FAILED in DOWNLOAD_SOURCE with CodeBuild's
    message, and nothing ran."""
    repo, _ = make_repo(
        tmp_path, {"buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - touch ran\n"}
    )
    unknown = "deadbeef" * 5

    result = build(repo, unknown, tmp_path)

    assert result.build_status == "FAILED"
    assert statuses(result)["DOWNLOAD_SOURCE"] == "FAILED"
    assert "INSTALL" not in statuses(result)
    assert result.failure_message == (
        f"CLIENT_ERROR: reference not found for primary source and source version {unknown}"
    )
    assert result.resolved_source_version == ""


def test_the_checked_out_tree_is_the_commits_content_and_the_repository_is_untouched(tmp_path: Path) -> None:
    """Given two commits and uncommitted and untracked changes on top, when the first commit is built, then its
    content is built (not HEAD's, not the working tree's), and the user's repository is exactly as it was."""
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat app.txt > seen.txt\n"
    repo, first = make_repo(tmp_path, {"buildspec.yml": buildspec, "app.txt": "first\n"})
    second = commit(repo, {"app.txt": "second\n"})
    write(repo, {"app.txt": "uncommitted\n", "untracked.txt": "new\n"})
    before = [git(repo, *args) for args in (["status", "--porcelain"], ["for-each-ref"], ["worktree", "list"])]

    result = build(repo, first, tmp_path)

    assert result.build_status == "SUCCEEDED", log(result)
    assert result.resolved_source_version == first != second
    assert read(result, "seen.txt") == "first"
    assert not (result.source_dir / "untracked.txt").exists()
    assert [git(repo, *args) for args in (["status", "--porcelain"], ["for-each-ref"], ["worktree", "list"])] == before
    assert git(repo, "rev-parse", "HEAD") == second
    assert (repo / "app.txt").read_text() == "uncommitted\n"


def test_a_working_tree_build_has_uncommitted_and_untracked_files_but_not_ignored_ones(tmp_path: Path) -> None:
    """Given uncommitted, untracked, ignored and deleted files, when the working tree is built, then the source
    holds the uncommitted and untracked files only, and the resolved version is a digest of them that changes
    when they do."""
    buildspec = """\
        version: 0.2
        phases:
          build:
            commands:
              - echo "$CODEBUILD_RESOLVED_SOURCE_VERSION" > resolved.txt
    """
    repo, _ = make_repo(
        tmp_path,
        {"buildspec.yml": buildspec, ".gitignore": "ignored.txt\n", "tracked.txt": "v1\n", "deleted.txt": "gone\n"},
    )
    write(repo, {"tracked.txt": "v2\n", "untracked.txt": "new\n", "ignored.txt": "secret\n"})
    (repo / "deleted.txt").unlink()

    result = build(repo, None, tmp_path)
    # This one keeps its work directory and log in the repository, where they are not ignored.
    same_tree = build(repo, None, repo / "builds", name="again")
    shutil.rmtree(repo / "builds")
    write(repo, {"untracked.txt": "changed\n"})
    changed_tree = build(repo, None, tmp_path, name="changed")

    assert result.build_status == "SUCCEEDED", log(result)
    assert read(result, "tracked.txt") == "v2"
    assert read(result, "untracked.txt") == "new"
    assert not (result.source_dir / "ignored.txt").exists()
    assert not (result.source_dir / "deleted.txt").exists()
    assert result.resolved_source_version.startswith("WORKTREE-")
    assert read(result, "resolved.txt") == result.resolved_source_version
    assert same_tree.resolved_source_version == result.resolved_source_version
    assert changed_tree.resolved_source_version != result.resolved_source_version


# ---------------------------------------------------------------------------------------------- bad buildspecs


@pytest.mark.parametrize(
    ("buildspec", "problem"),
    [
        ('version: 0.2\nphases:\n  build:\n    commands: ["echo one"\n', "is not valid YAML"),
        (None, "buildspec.yml was not found"),
        ("version: 0.1\nphases:\n  build:\n    commands:\n      - echo hi\n", "version 0.2 only"),
        ("version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands:\n      - echo\n", "bash only"),
        ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo key: value\n", "must be a string"),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands:\n      - 'true'\n",
            "ABORT or CONTINUE",
        ),
        ("version: 0.2\nphases:\n  test:\n    commands:\n      - 'true'\n", "unknown phases"),
    ],
    ids=["malformed-yaml", "missing", "version-0.1", "sh-shell", "mapping-command", "retry", "unknown-phase"],
)
def test_a_buildspec_codebuild_would_not_run_fails_download_source(
    tmp_path: Path, buildspec: str | None, problem: str
) -> None:
    """Given a buildspec that is malformed, missing or unsupported, then the build FAILED in DOWNLOAD_SOURCE with
    a YAML_FILE_ERROR that says what is wrong, and no command phase ran."""
    repo, sha = make_repo(tmp_path, {"README": "x\n"} if buildspec is None else {"buildspec.yml": buildspec})

    result = build(repo, sha, tmp_path)

    assert result.build_status == "FAILED"
    assert statuses(result)["DOWNLOAD_SOURCE"] == "FAILED"
    assert "INSTALL" not in statuses(result)
    assert result.failure_message is not None
    assert result.failure_message.startswith("YAML_FILE_ERROR: ")
    assert problem in result.failure_message


# ---------------------------------------------------------------------------------------------- timeout and cancel

SLEEPING_BUILDSPEC = """\
    version: 0.2
    env:
      shell: bash
    phases:
      build:
        commands:
          - sleep 30 & echo $! > "$CODEBUILD_SRC_DIR/../sleep.pid"; wait
      post_build:
        commands:
          - touch post-build-ran.txt
"""


def _process_gone(pid: int, within_seconds: float = 5.0) -> bool:
    """True once pid is gone (or a zombie nobody has reaped yet: it runs no more)."""
    status = Path(f"/proc/{pid}/status")

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return status.exists() and "State:\tZ" in status.read_text()

    return poll_until(gone, timeout=within_seconds, interval=0.01)


def test_a_build_over_its_timeout_is_timed_out_and_its_processes_are_ended(tmp_path: Path) -> None:
    """Given a command that sleeps 30 s (in the background, waited for) and a 1 s timeout, then the build ends
    TIMED_OUT within a few seconds, the running phase is TIMED_OUT, post_build does not run, and the sleep is
    gone too."""
    repo, sha = make_repo(tmp_path, {"buildspec.yml": SLEEPING_BUILDSPEC})

    started = time.monotonic()
    result = build(repo, sha, tmp_path, timeout_seconds=1)
    elapsed = time.monotonic() - started

    assert result.build_status == "TIMED_OUT"
    assert elapsed < 6, elapsed
    assert statuses(result)["BUILD"] == "TIMED_OUT"
    assert phase(result, "BUILD").contexts[0]["statusCode"] == "BUILD_TIMED_OUT"
    assert "POST_BUILD" not in statuses(result)
    assert result.failure_message is not None
    assert result.failure_message.startswith("BUILD_TIMED_OUT")
    assert _process_gone(int((tmp_path / "build" / "sleep.pid").read_text()))


def test_background_processes_a_build_leaves_behind_end_with_it(tmp_path: Path) -> None:
    """Given a command that starts a 30 s sleep in the background and does not wait, then the build SUCCEEDED at
    once and the sleep is ended with it, as CodeBuild's container would end it."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                phases:
                  build:
                    commands:
                      - sleep 30 > /dev/null 2>&1 & echo $! > "$CODEBUILD_SRC_DIR/../sleep.pid"
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "SUCCEEDED", log(result)
    assert _process_gone(int((tmp_path / "build" / "sleep.pid").read_text()))


def test_cancel_stops_the_build(tmp_path: Path) -> None:
    """Given a build sleeping in its build phase, when cancel is set (StopBuild), then the build ends STOPPED at
    once, with the running phase STOPPED; a build cancelled before it starts runs nothing."""
    repo, sha = make_repo(tmp_path, {"buildspec.yml": SLEEPING_BUILDSPEC})
    cancel = threading.Event()
    results: list[BuildResult] = []
    worker = threading.Thread(target=lambda: results.append(build(repo, sha, tmp_path, cancel=cancel)))
    worker.start()
    log_path = tmp_path / "build.log"
    reached = poll_until(
        lambda: "Running command sleep 30" in (log_path.read_text() if log_path.exists() else ""), timeout=10
    )
    assert reached, "the build never reached its sleep"

    cancelled_at = time.monotonic()
    cancel.set()
    worker.join(timeout=10)
    already_cancelled = build(repo, sha, tmp_path, name="cancelled-before", cancel=cancel)

    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 5
    (result,) = results
    assert result.build_status == "STOPPED"
    assert statuses(result)["BUILD"] == "STOPPED"
    assert "POST_BUILD" not in statuses(result)
    assert already_cancelled.build_status == "STOPPED"
    assert statuses(already_cancelled)["DOWNLOAD_SOURCE"] == "STOPPED"


# ---------------------------------------------------------------------------------------------- environment


def test_the_build_environment_is_codebuilds_not_the_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given AWS credentials and other variables in the caller's environment, then the build sees none of them;
    it sees CodeBuild's variables, the region it was given, the offline pip settings, and the venv's python."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CALLER_ONLY"):
        monkeypatch.setenv(name, "caller-value")
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": """\
                version: 0.2
                phases:
                  build:
                    commands:
                      - env -0 > env.bin
                      - command -v python > python.txt
            """
        },
    )

    result = build(repo, sha, tmp_path, environment={"AWS_REGION": "eu-west-1", "IMAGE_TAG": "abc"})

    assert result.build_status == "SUCCEEDED", log(result)
    entries = (result.source_dir / "env.bin").read_bytes().decode().split("\0")
    env = dict(entry.split("=", 1) for entry in entries if entry)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "CALLER_ONLY"}.isdisjoint(
        env
    )
    assert Path(read(result, "python.txt")).parent == Path(sys.executable).parent
    assert env["HOME"] != os.environ.get("HOME")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["IMAGE_TAG"] == "abc"
    assert env["PIP_NO_INDEX"] == "1"
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
    assert env["CODEBUILD_BUILD_ID"] == "sagepipe-image-build:build"
    assert env["CODEBUILD_BUILD_NUMBER"] == "1"
    assert env["CODEBUILD_INITIATOR"] == "sagepipe-local"
    assert env["CODEBUILD_RESOLVED_SOURCE_VERSION"] == env["CODEBUILD_SOURCE_VERSION"] == sha
    assert env["CODEBUILD_SRC_DIR"] == str(result.source_dir)
    assert env["CODEBUILD_START_TIME"].isdigit()
    assert env["CODEBUILD_BUILD_SUCCEEDING"] == "1"


@pytest.mark.parametrize(
    ("mistake", "problem"),
    [
        ("not a repository", "not the top level of a git repository"),
        ("no timeout", "timeout_seconds"),
        ("bad variable name", "not a valid shell variable name"),
        ("reused work_dir", "already exists"),
    ],
)
def test_a_request_only_a_caller_mistake_makes_raises_build_error(tmp_path: Path, mistake: str, problem: str) -> None:
    repo, sha = make_repo(tmp_path, {"buildspec.yml": "version: 0.2\nphases: {}\n"})
    fields: dict[str, Any] = {"environment": {}, "timeout_seconds": 60}
    if mistake == "not a repository":
        repo = tmp_path / "plain-directory"
        repo.mkdir()
    elif mistake == "no timeout":
        fields["timeout_seconds"] = 0
    elif mistake == "bad variable name":
        fields["environment"] = {"BAD-NAME": "x"}
    else:
        (tmp_path / "build" / "src").mkdir(parents=True)

    with pytest.raises(BuildError, match=problem):
        build(repo, sha, tmp_path, **fields)


# ---------------------------------------------------------------------------------------------- the real buildspec


@pytest.mark.e2e
def test_the_projects_buildspec_succeeds_locally_at_head(tmp_path: Path) -> None:
    """Given a clone of this repository at HEAD, when its own buildspec.yml runs, then the install is satisfied
    offline, the container's tests pass, every docker / aws command is skipped, and the build SUCCEEDED;
    IMAGE_URI and IMAGE_DIGEST are left for the emulator to export."""
    clone = tmp_path / "sagepipe"
    subprocess.run([GIT, "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    head = git(clone, "rev-parse", "HEAD")

    result = build(
        clone,
        head,
        tmp_path,
        timeout_seconds=300,
        environment={
            "IMAGE_TAG": head,
            "IMAGE_REPOSITORY_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagepipe-train",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )

    assert result.build_status == "SUCCEEDED", log(result)
    assert result.resolved_source_version == head
    assert " passed" in log(result)
    assert result.skipped_commands
    assert all(is_registry_command(command) for command in result.skipped_commands)
    assert any(command.startswith("IMAGE_DIGEST=$(aws ecr") for command in result.skipped_commands)
    assert result.exported_variables == {}
    assert (result.source_dir / "container" / "Dockerfile").exists()
