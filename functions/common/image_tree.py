"""The identity of a training image: the git tree of exactly what the image build reads.

The build (buildspec.yml) reads `buildspec.yml` and `container/`, nothing else, so an image's identity is the
git tree object holding just those entries of a commit, as `git ls-tree <commit> -- buildspec.yml container |
git mktree` writes it. Two commits with the same entries have the same tree id, whatever else they change (a
README, the docs, the functions): the image is reused, with no build. IMAGE_INPUTS is the one place that set is
named; buildspec.yml computes the same id with real git (its pre_build phase), and a test checks the two agree.

Git's tree object format (git's `Documentation/gitformat-tree` and `tree.c`): `tree <size>\\0` followed by one
entry per name, `<octal mode> <name>\\0<20-byte id>`, sorted by name with a directory compared as if its name
ended in '/'; the object id is the SHA-1 of it all. Modes: 100644 file, 100755 executable, 120000 symbolic
link, 40000 directory, 160000 submodule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

IMAGE_INPUTS: Final = ("buildspec.yml", "container")
"""What the image build reads, relative to the repository's root: the image's identity is their git tree."""

TREE_TAG_PREFIX: Final = "tree-"
"""ECR tag of an image by content (`tree-<40 hex>`), beside the commit tag (40 hex) people read."""

MODES: Final = {"NORMAL": "100644", "EXECUTABLE": "100755", "SYMLINK": "120000"}
"""CodeCommit's FileModeTypeEnum (botocore codecommit model) as git modes."""

DIRECTORY_MODE: Final = "40000"
SUBMODULE_MODE: Final = "160000"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    name: str
    object_id: str


def _sort_key(entry: TreeEntry) -> bytes:
    name = entry.name.encode()
    return name + b"/" if entry.mode == DIRECTORY_MODE else name


def tree_id(entries: Iterable[TreeEntry]) -> str:
    """The git object id of a tree holding these entries (what `git mktree` prints)."""
    body = b"".join(
        f"{entry.mode} {entry.name}".encode() + b"\0" + bytes.fromhex(entry.object_id)
        for entry in sorted(entries, key=_sort_key)
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def image_tree_from_folder(folder: Mapping[str, Any]) -> str | None:
    """The image tree id from CodeCommit GetFolder's answer for the repository's root (`folderPath` "/"), or
    None when the commit holds none of IMAGE_INPUTS (nothing to build)."""
    entries: list[TreeEntry] = []
    for item in folder.get("subFolders") or []:
        entries.append(TreeEntry(DIRECTORY_MODE, item["relativePath"], item["treeId"]))
    for key in ("files", "symbolicLinks"):
        for item in folder.get(key) or []:
            entries.append(TreeEntry(MODES[item.get("fileMode", "NORMAL")], item["relativePath"], item["blobId"]))
    for item in folder.get("subModules") or []:
        entries.append(TreeEntry(SUBMODULE_MODE, item["relativePath"], item["commitId"]))
    chosen = [entry for entry in entries if entry.name in IMAGE_INPUTS]
    return tree_id(chosen) if chosen else None


def tree_tag(image_tree: str) -> str:
    return TREE_TAG_PREFIX + image_tree
