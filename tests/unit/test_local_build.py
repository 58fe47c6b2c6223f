"""The local CodeBuild: a buildspec runs for one commit on this machine, with CodeBuild's semantics.

Each test makes a small git repository with its own buildspec, runs the build, and reads what the build left in
its source directory (files its commands wrote), its phases and its log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from sagepipe.local.codebuild.executor import (
    BuildError,
    BuildRequest,
    BuildResult,
    EmulatorAccess,
    Phase,
    run_build,
)
from sagepipe.local.images import ImageStore
from sagepipe.local.process import poll_until
from sagepipe.local.warm_start import WarmStarts

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
    assert result.tool_calls == ()
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


def test_exit_ends_only_its_command_and_exported_values_keep_every_byte(tmp_path: Path) -> None:
    """Given a command that sets variables and then exits 0, and exported values holding newlines, tabs, quotes,
    backslashes, `=`, NUL-free binary-looking bytes and non-ASCII text, then the build goes on after the exit with
    the variables kept, and every exported value comes back byte for byte (an empty one too; an unset one is left
    out)."""
    repo, sha = make_repo(
        tmp_path,
        {
            "buildspec.yml": r"""
                version: 0.2
                env:
                  shell: bash
                  exported-variables: [MULTILINE, TABBED, QUOTED, EMPTY, UNICODE, NEVER_SET]
                phases:
                  build:
                    commands:
                      - MULTILINE=$'first line\nsecond line\n'; TABBED=$'a\tb=c'; exit 0
                      - QUOTED="it's \"quoted\" \\ and \$dollar"; EMPTY=
                      - UNICODE='données ✓'; echo "$MULTILINE" > after-exit.txt
            """
        },
    )

    result = build(repo, sha, tmp_path)

    assert result.build_status == "SUCCEEDED", log(result)
    assert read(result, "after-exit.txt") == "first line\nsecond line"
    assert result.exported_variables == {
        "MULTILINE": "first line\nsecond line\n",
        "TABBED": "a\tb=c",
        "QUOTED": 'it\'s "quoted" \\ and $dollar',
        "EMPTY": "",
        "UNICODE": "données ✓",
    }


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


WARM_PROBE = """
import json, os, sys
FOUND_AT_START = "sqlite3" in sys.modules
import sqlite3
print(json.dumps({"found": FOUND_AT_START, "argv": sys.argv[1:], "path0": sys.path[0], "cwd": os.getcwd()}))
sys.exit(int(sys.argv[1]))
"""


def test_a_build_with_warm_starts_runs_its_python_warm_and_fails_as_it_would_cold(
    tmp_path: Path, warm_starts: WarmStarts
) -> None:
    """Given the runtime's warm starts and a buildspec whose commands `cd app` and run `python -m probe`, `python3
    -m probe` and `python3.13 app/probe.py`, where probe.py imports sqlite3;
    When it builds;
    Then `python` on the build's PATH is the warm launcher, the module and the script found sqlite3 imported (read
    from app/'s files, preloaded), with their own argv, sys.path[0] and working directory, and a probe that exits 3
    fails the build as it would cold. The same buildspec without warm starts runs cold: nothing found imported."""
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    repo, sha = make_repo(
        tmp_path,
        {
            "app/probe.py": WARM_PROBE,
            "buildspec.yml": f"""\
                version: 0.2
                phases:
                  build:
                    commands:
                      - command -v python > python.txt
                      - (cd app && python -m probe 0 a > ../module.json)
                      - (cd app && python3 -m probe 0 b > ../module3.json)
                      - {python} app/probe.py 0 c > script.json
                      - cd app && python -m probe 3
            """,
        },
    )

    warm = build(repo, sha, tmp_path, name="warm", warm_starts=warm_starts)
    cold = build(repo, sha, tmp_path, name="cold")

    app = str(warm.source_dir / "app")
    assert warm.build_status == cold.build_status == "FAILED"
    assert phase(warm, "BUILD").contexts == phase(cold, "BUILD").contexts
    assert "Reason: exit status 3" in str(phase(warm, "BUILD").contexts)
    assert Path(read(warm, "python.txt")).parent != Path(sys.executable).parent
    assert Path(read(cold, "python.txt")).parent == Path(sys.executable).parent
    assert "python starts warm: forked from a process that has imported " in log(warm)
    assert json.loads(read(warm, "module.json")) == {"found": True, "argv": ["0", "a"], "path0": app, "cwd": app}
    assert json.loads(read(warm, "module3.json"))["found"] is True
    assert json.loads(read(warm, "script.json")) == {
        "found": True,
        "argv": ["0", "c"],
        "path0": app,
        "cwd": str(warm.source_dir),
    }
    cold_app = str(cold.source_dir / "app")
    assert json.loads(read(cold, "module.json")) == {
        "found": False,
        "argv": ["0", "a"],
        "path0": cold_app,
        "cwd": cold_app,
    }


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

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@dataclass
class ProjectBuilds:
    """Builds of this repository's HEAD with its own buildspec.yml, against the unit tests' moto server."""

    clone: Path
    head: str
    repository: str
    endpoint: str
    tmp_path: Path
    warm_starts: WarmStarts | None = None

    @property
    def ecr(self) -> Any:
        return boto3.client(
            "ecr", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )

    def run(self, name: str, buildspec: str = "buildspec.yml") -> BuildResult:
        return build(
            self.clone,
            self.head,
            self.tmp_path,
            name=name,
            timeout_seconds=300,
            buildspec_path=buildspec,
            emulator=EmulatorAccess(self.endpoint, "sagepipe-local", "sagepipe-local", self.tmp_path / "images"),
            warm_starts=self.warm_starts,
            environment={
                "IMAGE_TAG": self.head,
                "IMAGE_REPOSITORY_URI": f"{REGISTRY}/{self.repository}",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
            },
        )

    def pushed_digest(self) -> str:
        details = self.ecr.describe_images(repositoryName=self.repository, imageIds=[{"imageTag": self.head}])
        digest: str = details["imageDetails"][0]["imageDigest"]
        return digest


@pytest.fixture(scope="module")
def warm_starts() -> Iterator[WarmStarts]:
    """The warm starts the emulator's builds use (one runtime's, kept across its builds)."""
    starts = WarmStarts()
    yield starts
    starts.close()


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str, warm_starts: WarmStarts) -> ProjectBuilds:
    clone = tmp_path / "sagepipe"
    subprocess.run([GIT, "clone", "--quiet", "--shared", str(REPO_ROOT), str(clone)], check=True)
    repository = f"sagepipe-train-{uuid.uuid4().hex[:8]}"
    builds = ProjectBuilds(clone, git(clone, "rev-parse", "HEAD"), repository, moto_endpoint, tmp_path, warm_starts)
    builds.ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")  # as template.yaml's
    return builds


def programs(result: BuildResult) -> list[tuple[str, ...]]:
    """The docker / aws subcommands the build ran (`docker login`, `aws ecr describe-images`, ...), in order."""
    return [call.argv[:3] if call.argv[0] == "aws" else call.argv[:2] for call in result.tool_calls]


@pytest.mark.e2e
def test_the_projects_buildspec_builds_pushes_and_exports_the_image_then_reuses_it(project: ProjectBuilds) -> None:
    """Given a clone of this repository at HEAD and an empty immutable ECR repository, when its own buildspec.yml
    runs, then the install is satisfied offline, the container's tests pass, the image is built and pushed, and the
    buildspec itself exports IMAGE_URI, IMAGE_DIGEST and IMAGE_TREE of the pushed image, which is the local image
    training runs; the image carries its tree's tag and the commit's. When the same commit is built again (the
    image is already pushed), then nothing is built or pushed, the tests are not run again, and the same image is
    exported."""
    first = project.run("first")
    again = project.run("again")

    assert first.build_status == "SUCCEEDED", log(first)
    assert " passed" in log(first)
    digest = project.pushed_digest()
    tree = git(project.clone, "ls-tree", "HEAD", "--", "buildspec.yml", "container")
    built_tree = subprocess.run(
        ["git", "-C", str(project.clone), "mktree"], input=tree + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    assert first.exported_variables == {
        "IMAGE_URI": f"{REGISTRY}/{project.repository}@{digest}",
        "IMAGE_DIGEST": digest,
        "IMAGE_TREE": built_tree,
    }
    assert ("docker", "build") in programs(first)
    push = next(call for call in first.tool_calls if call.argv[:2] == ("docker", "push"))
    assert (push.argv[2], push.exit_status) == (f"{REGISTRY}/{project.repository}:tree-{built_tree}", 0)
    (pushed,) = project.ecr.describe_images(repositoryName=project.repository)["imageDetails"]
    assert sorted(pushed["imageTags"]) == sorted([project.head, f"tree-{built_tree}"])
    image = ImageStore(project.tmp_path / "images").find(digest)
    assert image is not None
    assert (image.program, image.commit) == ("train.py", project.head)
    assert (image.code_dir / "train.py").read_bytes() == (project.clone / "container" / "train.py").read_bytes()

    assert again.build_status == "SUCCEEDED", log(again)
    assert f"image tree-{built_tree} was already pushed; not rebuilding" in log(again)
    assert " passed" not in log(again)
    assert {("docker", "build"), ("docker", "push")}.isdisjoint(programs(again))
    assert again.exported_variables == first.exported_variables


@pytest.mark.e2e
def test_a_build_racing_another_of_its_commit_exports_the_image_pushed_first(project: ProjectBuilds) -> None:
    """Given the project's buildspec, and another build of the same tree that pushes its own image under the tree's
    tag while this one builds (a retried StartBuild, or a commit with the same tree), then this build's push fails on
    the immutable tag, and the build still SUCCEEDED, exporting the image the other build pushed, as buildspec.yml's
    post_build intends."""
    spec = yaml.safe_load((project.clone / "buildspec.yml").read_text())
    racing = (
        'cp -r container ../racing && echo "# the racing build" >> ../racing/train.py'
        ' && docker build --tag "${IMAGE_REPOSITORY_URI}:${TREE_TAG}" ../racing'
        ' && docker push "${IMAGE_REPOSITORY_URI}:${TREE_TAG}"'
    )
    spec["phases"]["build"]["commands"].insert(0, racing)

    result = project.run("racing", buildspec=yaml.safe_dump(spec, sort_keys=False))

    assert result.build_status == "SUCCEEDED", log(result)
    pushes = [call for call in result.tool_calls if call.argv[:2] == ("docker", "push")]
    assert [push.exit_status for push in pushes] == [0, 1]
    assert "cannot be overwritten because the repository is immutable" in log(result)
    assert "was pushed meanwhile by another build of this tree; using it" in log(result)
    digest = project.pushed_digest()
    assert result.exported_variables["IMAGE_DIGEST"] == digest
    image = ImageStore(project.tmp_path / "images").find(digest)
    assert image is not None
    assert (image.code_dir / "train.py").read_text().endswith("# the racing build\n")
