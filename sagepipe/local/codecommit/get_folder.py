"""CodeCommit GetFolder answers from the local git repository.

The gap
    moto 5.2.5's CodeCommitResponse has CreateRepository, GetRepository and DeleteRepository only: GetFolder
    fails as not implemented. NormaliseTrigger calls it to derive the image's tree id from a CodeCommit push.

What this adapter does
    Adds a `get_folder` handler to moto's CodeCommitResponse (moto dispatches an operation to the handler of
    its snake_case name, `BaseResponse.call_action`). It lists the commit's root tree with real git
    (`sagepipe.local.git.root_entries`) in GetFolderOutput's shape (botocore codecommit model): `files` (blobId,
    fileMode NORMAL or EXECUTABLE), `symbolicLinks` (fileMode SYMLINK), `subFolders` (treeId), `subModules`
    (commitId), with absolutePath and relativePath. An unknown commit answers CommitDoesNotExistException,
    another folder than the root FolderDoesNotExistException, no local repository RepositoryDoesNotExistException
    (the model's error shapes).

How it differs from AWS
    Every repository name is the one local repository; only the root folder is answered.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any, Final

from sagepipe.local import git
from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "codecommit_get_folder"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.codecommit.responses:CodeCommitResponse",
        why="moto's CodeCommit handlers; an operation is dispatched to the method of its snake_case name",
    ),
    Internal("moto.core.responses:BaseResponse._get_param", parameters=("self", "param_name", "if_none")),
    Internal("moto.core.exceptions:JsonRESTError", why="how a handler answers a JSON protocol error"),
)

ROOT_PATHS: Final = frozenset({"/", ""})
_FILE_MODES: Final = {"100644": "NORMAL", "100755": "EXECUTABLE", "120000": "SYMLINK"}


def _error(code: str, message: str) -> Exception:
    error: type[Exception] = importlib.import_module("moto.core.exceptions").JsonRESTError
    return error(code, message)


def folder(repository: Path | None, commit: str, folder_path: str) -> dict[str, Any]:
    """GetFolderOutput for the root of `commit` in the local repository."""
    if repository is None:
        raise _error("RepositoryDoesNotExistException", "the local runtime has no git repository")
    if folder_path not in ROOT_PATHS:
        raise _error(
            "FolderDoesNotExistException",
            f"sagepipe's local CodeCommit answers the root folder only, not {folder_path}",
        )
    try:
        commit_id, root, entries = git.root_entries(repository, commit or "HEAD")
    except subprocess.CalledProcessError as error:
        raise _error("CommitDoesNotExistException", f"Could not find commit {commit}") from error
    output: dict[str, Any] = {
        "commitId": commit_id,
        "folderPath": "/",
        "treeId": root,
        "subFolders": [],
        "files": [],
        "symbolicLinks": [],
        "subModules": [],
    }
    for mode, kind, object_id, name in entries:
        paths = {"absolutePath": name, "relativePath": name}
        if kind == "tree":
            output["subFolders"].append({"treeId": object_id, **paths})
        elif kind == "commit":
            output["subModules"].append({"commitId": object_id, **paths})
        elif mode == "120000":
            output["symbolicLinks"].append({"blobId": object_id, "fileMode": "SYMLINK", **paths})
        else:
            output["files"].append({"blobId": object_id, "fileMode": _FILE_MODES.get(mode, "NORMAL"), **paths})
    return output


def get_folder(self: Any) -> str:
    repository = context.current().repository
    return json.dumps(folder(repository, self._get_param("commitSpecifier") or "", self._get_param("folderPath") or ""))


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    responses = importlib.import_module("moto.codecommit.responses")
    replace_attribute(responses.CodeCommitResponse, "get_folder", get_folder)
