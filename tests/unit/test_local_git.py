"""What `sagepipe local` asks of the user's repository (sagepipe.local.git)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sagepipe.local import git


@pytest.fixture
def anonymous_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one commit, whose user has no git identity anywhere: no global or system configuration,
    no GIT_AUTHOR_* or GIT_COMMITTER_* variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{role}_{part}", raising=False)
    repository = tmp_path / "code"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    (repository / "train.py").write_text("print('v1')\n", encoding="utf-8")
    subprocess.run(["git", "-C", str(repository), "add", "-A"], check=True)
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "-C", str(repository), "commit", "-qm", "v1"], check=True, env={**os.environ, **identity})
    return repository


def test_a_working_tree_snapshot_needs_no_git_identity(anonymous_repository: Path) -> None:
    """Given a user with no git identity and an uncommitted change (`sagepipe local run --working-tree`);
    When the working tree is snapshot;
    Then the snapshot is a commit on top of HEAD that holds the change, and HEAD, the index and the work tree are as
    they were."""
    # Given
    (anonymous_repository / "train.py").write_text("print('v2')\n", encoding="utf-8")
    head = git.git(anonymous_repository, "rev-parse", "HEAD")

    # When
    snapshot = git.snapshot_working_tree(anonymous_repository)

    # Then
    assert git.git(anonymous_repository, "rev-parse", f"{snapshot}^") == head
    assert git.git(anonymous_repository, "show", f"{snapshot}:train.py") == "print('v2')"
    assert git.git(anonymous_repository, "rev-parse", "HEAD") == head
    assert git.git(anonymous_repository, "status", "--porcelain") == "M train.py"
