"""The image's identity: the git tree of what the build reads, derived from CodeCommit's GetFolder or from git.

Both derivations must give the id `git ls-tree <commit> -- buildspec.yml container | git mktree` prints, which
is what buildspec.yml computes inside the build: otherwise the pipeline would look up one tag and the build push
another.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common.image_tree import IMAGE_INPUTS, TreeEntry, image_tree_from_folder, tree_id
from sagepipe.local import git
from sagepipe.local.codecommit.get_folder import folder
from sagepipe.template import PROJECT_ROOT

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _commit(repo: Path, files: dict[str, str], message: str, executable: tuple[str, ...] = ()) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if name in executable:
            path.chmod(0o755)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True, env={**os.environ, **IDENTITY})
    return git.git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def _from_codecommit(repo: Path, commit: str) -> str | None:
    return image_tree_from_folder(folder(repo, commit, "/"))


def test_the_inputs_are_what_buildspec_lists() -> None:
    """Given IMAGE_INPUTS, then buildspec.yml's tree command lists exactly those paths (one set, named once)."""
    buildspec = (PROJECT_ROOT / "buildspec.yml").read_text(encoding="utf-8")
    assert f"git ls-tree HEAD -- {' '.join(IMAGE_INPUTS)} | git mktree" in buildspec


def test_getfolder_and_git_give_the_tree_git_mktree_writes(repo: Path) -> None:
    """Given a commit with an executable, a symbolic link, nested folders and files outside the inputs, when its
    image tree is derived from GetFolder's answer and from git, then both equal git mktree's id."""
    commit = _commit(
        repo,
        {
            "buildspec.yml": "version: 0.2\n",
            "container/train.py": "print('train')\n",
            "container/run.sh": "#!/bin/sh\n",
            "container/tests/test_a.py": "def test(): pass\n",
            "README.md": "docs\n",
            "containers.txt": "sorts after container/ in git's order\n",
        },
        "first",
        executable=("container/run.sh",),
    )
    (repo / "container" / "link").symlink_to("train.py")
    commit = _commit(repo, {}, "link")

    expected = git.image_tree(repo, commit)
    assert len(expected) == 40
    assert _from_codecommit(repo, commit) == expected


def test_only_the_inputs_change_the_tree(repo: Path) -> None:
    """Given a first commit, when a docs-only commit follows, then the tree is the same; when a file under
    container/ changes, or buildspec.yml, or a file's mode, then it differs."""
    first = _commit(repo, {"buildspec.yml": "v1\n", "container/train.py": "a\n", "README.md": "x\n"}, "first")
    docs = _commit(repo, {"README.md": "y\n", "docs/new.md": "z\n"}, "docs")
    code = _commit(repo, {"container/train.py": "b\n"}, "code")
    spec = _commit(repo, {"buildspec.yml": "v2\n"}, "spec")
    (repo / "container" / "train.py").chmod(0o755)
    mode = _commit(repo, {}, "mode")

    trees = [_from_codecommit(repo, commit) for commit in (first, docs, code, spec, mode)]
    assert trees[0] == trees[1]
    assert len(set(trees[1:])) == 4


def test_a_commit_without_the_inputs_has_no_tree(repo: Path) -> None:
    commit = _commit(repo, {"README.md": "x\n"}, "first")
    assert _from_codecommit(repo, commit) is None


def test_tree_entries_sort_a_folder_as_if_its_name_ended_in_a_slash() -> None:
    """git sorts `container` (a tree) after `container.txt` ('/' > '.'): the id depends on that order."""
    blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    a = tree_id([TreeEntry("40000", "container", blob), TreeEntry("100644", "container.txt", blob)])
    b = tree_id([TreeEntry("100644", "container.txt", blob), TreeEntry("40000", "container", blob)])
    assert a == b
