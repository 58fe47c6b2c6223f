"""Git, as the local runtime uses it: the user's repository is read, never written (objects aside).

* `git()`, `commit_exists()`, `uncommitted_changes()`, `snapshot_working_tree()`: what `sagepipe local` asks of
  the user's repository (the commit to push, a snapshot of uncommitted work).
* `checkout()` and `copy_worktree()`: the local build's DOWNLOAD_SOURCE, run through the build's supervisor so
  that its deadline and StopBuild apply to git too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

GIT_TIMEOUT_SECONDS = 60
_COPY_ATTEMPTS = 10
"""Copies of os.environ tried while variables are being removed from it (inherited_environment)."""


class GitError(Exception):
    """git could not do what the build asked (the message says what, as CodeBuild's would)."""


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without its GIT_* variables (a hook's GIT_DIR would point git at another
    repository), with no terminal prompt."""
    env = {name: value for name, value in inherited_environment().items() if not name.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env | dict(extra or {})


def inherited_environment() -> dict[str, str]:
    """A copy of this process's environment, for a child given it explicitly: every git here is started with an
    `env`, never with the inherited one.

    Why: the in-process Lambda runtime sets each function's variables around an invocation
    (sagepipe.local.core.emulator.temporary_environment) while other threads start processes. A child started
    with no `env` is exec'd with the C `environ` array while the GIL is released (vfork, posix_spawn), and a
    setenv() in another thread may move that array under it: the exec then fails with EFAULT ("[Errno 14] Bad
    address: 'git'", seen in this project's suite; tests/unit/test_environment_race.py reproduces it). A given
    `env` is copied into an array of the child's own first."""
    for _ in range(_COPY_ATTEMPTS - 1):
        # A variable removed between os.environ's listing of its names and the read of its value: copy again.
        with contextlib.suppress(KeyError):
            return dict(os.environ)
    return dict(os.environ)


def git(repository: Path, *args: str) -> str:
    return _output(repository, args)


def _output(
    repository: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> str:
    """What `git -C repository args` prints, stripped; its environment is `env`, or a copy of this process's."""
    return subprocess.run(
        ["git", "-C", str(repository), *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        env=inherited_environment() if env is None else dict(env),
        timeout=GIT_TIMEOUT_SECONDS,
    ).stdout.strip()


def commit_exists(repository: Path, commit: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(repository), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        env=inherited_environment(),
        timeout=GIT_TIMEOUT_SECONDS,
        check=False,
    )
    return result.returncode == 0


def uncommitted_changes(repository: Path, paths: tuple[str, ...] = ("container", "buildspec.yml")) -> list[str]:
    """Files under `paths` that differ from HEAD (modified, staged, or untracked and not ignored)."""
    output = git(repository, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    return [line[3:] for line in output.splitlines() if line.strip()]


def snapshot_working_tree(repository: Path) -> str:
    """A commit object holding the working tree (tracked changes and untracked, non-ignored files), with HEAD as
    parent, on no branch: the build can check out exactly what is on disk, and HEAD and the index stay as they
    are. Like `git stash create`, it only adds objects to the repository's object store."""
    index = repository / ".git" / "sagepipe-snapshot-index"
    env = _identity_environment({"GIT_INDEX_FILE": str(index)})
    try:
        for args in (["read-tree", "HEAD"], ["add", "-A"]):
            subprocess.run(["git", "-C", str(repository), *args], check=True, env=env, timeout=GIT_TIMEOUT_SECONDS)
        tree = _output(repository, ["write-tree"], env=env)
    finally:
        index.unlink(missing_ok=True)
    head = git(repository, "rev-parse", "HEAD")
    # The identity defaults matter here: a commit needs an author and a committer, and the user may have none.
    message = f"sagepipe local: working tree on top of {head[:12]}"
    return _output(repository, ["commit-tree", tree, "-p", head, "-m", message], env=_identity_environment({}))


def _identity_environment(extra: Mapping[str, str]) -> dict[str, str]:
    inherited = inherited_environment()
    return {
        **inherited,
        "GIT_AUTHOR_NAME": inherited.get("GIT_AUTHOR_NAME", "sagepipe local"),
        "GIT_AUTHOR_EMAIL": inherited.get("GIT_AUTHOR_EMAIL", "sagepipe@localhost"),
        "GIT_COMMITTER_NAME": inherited.get("GIT_COMMITTER_NAME", "sagepipe local"),
        "GIT_COMMITTER_EMAIL": inherited.get("GIT_COMMITTER_EMAIL", "sagepipe@localhost"),
        **extra,
    }


# ---------------------------------------------------------------------------------------------- the build's source

RunGit = Callable[[Sequence[str], Path], tuple[int, bytes, str]]
"""Runs git with these arguments in this directory; returns its exit status, stdout and stderr."""


def checkout(run: RunGit, repository: Path, source_version: str, destination: Path) -> str:
    """Clone repository into destination and check source_version out; return the commit's SHA.

    `--shared` borrows the repository's objects instead of copying them: fast, and nothing is written there.
    """
    repository = repository.resolve()
    status, _, error = run(
        ["clone", "--quiet", "--shared", "--no-checkout", "--", str(repository), str(destination)], destination.parent
    )
    if status != 0:
        raise GitError(f"could not clone {repository}: {error}")
    status, out, _ = run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{source_version}^{{commit}}"], destination
    )
    if status != 0:
        raise GitError(f"reference not found for primary source and source version {source_version}")
    commit = out.decode().strip()
    # core.hooksPath: a post-checkout hook the user configured globally has no business in a build.
    status, _, error = run(
        ["-c", f"core.hooksPath={os.devnull}", "checkout", "--quiet", "--detach", commit], destination
    )
    if status != 0:
        raise GitError(f"could not check out {commit}: {error}")
    return commit


def copy_worktree(
    run: RunGit, repository: Path, destination: Path, *, exclude: Sequence[Path], check: Callable[[], None]
) -> str:
    """Copy what a commit made now would hold (`git ls-files --cached --others --exclude-standard`) into
    destination; return "WORKTREE-" and a digest of the paths and contents. Paths under `exclude` (the build's
    own files) are left out; `check` is called before each file (it raises to stop the copy)."""
    repository = repository.resolve()
    status, out, error = run(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], repository)
    if status != 0:
        raise GitError(f"could not list the working tree of {repository}: {error}")
    digest = hashlib.sha256()
    destination.mkdir()
    # A path is listed once per stage while a merge is in conflict; sorting makes the digest order-free.
    for raw in sorted({path for path in out.split(b"\0") if path}):
        check()
        if not any((repository / os.fsdecode(raw)).is_relative_to(path) for path in exclude):
            _copy_entry(repository, destination, raw, digest.update)
    return "WORKTREE-" + digest.hexdigest()[:16]


def _copy_entry(repository: Path, source: Path, raw: bytes, digest: Callable[[bytes], None]) -> None:
    relative = Path(os.fsdecode(raw))
    if relative.is_absolute() or ".." in relative.parts:
        return  # git never lists such a path; refuse to write outside the source directory anyway
    origin, target = repository / relative, source / relative
    try:
        mode = origin.lstat().st_mode
    except FileNotFoundError:
        return  # tracked but deleted in the working tree: a commit made now would not have it
    if stat.S_ISLNK(mode):
        link = origin.readlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(link)
        digest(b"link\0" + raw + b"\0" + os.fsencode(link) + b"\0")
    elif stat.S_ISREG(mode):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
        # The digest is of the copy, which is what gets built even if the original changes meanwhile.
        executable = b"x" if mode & stat.S_IXUSR else b"-"
        digest(b"file\0" + executable + raw + b"\0" + str(target.stat().st_size).encode() + b"\0")
        with target.open("rb") as content:
            for chunk in iter(lambda: content.read(1 << 20), b""):
                digest(chunk)
    # Anything else (a submodule's directory) is not part of this repository's tree.


# ---------------------------------------------------------------------------------------------- trees


def root_entries(repository: Path, commit: str) -> tuple[str, str, list[tuple[str, str, str, str]]]:
    """The commit's full id, its root tree id, and the root tree's entries (mode, type, id, name), as
    `git ls-tree` lists them. Raises subprocess.CalledProcessError when the commit does not exist."""
    commit_id = git(repository, "rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}")
    root = git(repository, "rev-parse", f"{commit_id}^{{tree}}")
    listing = subprocess.run(
        ["git", "-C", str(repository), "ls-tree", "-z", commit_id],
        check=True,
        capture_output=True,
        env=inherited_environment(),
        timeout=GIT_TIMEOUT_SECONDS,
    ).stdout
    entries = []
    for raw in listing.split(b"\0"):
        if raw:
            meta, _, name = raw.partition(b"\t")
            mode, kind, object_id = meta.decode().split()
            entries.append((mode, kind, object_id, os.fsdecode(name)))
    return commit_id, root, entries


def image_tree(repository: Path, commit: str, inputs: Sequence[str] = ("buildspec.yml", "container")) -> str:
    """The git tree of just `inputs` at `commit`, as buildspec.yml computes it: `git ls-tree | git mktree`
    (mktree adds that one small tree object to the repository's object store)."""
    listing = git(repository, "ls-tree", commit, "--", *inputs)
    return _output(repository, ["mktree"], stdin=listing + "\n" if listing else "")
