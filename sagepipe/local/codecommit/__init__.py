"""CodeCommit, as the pipeline reads it: GetFolder, from the local git repository.

AWS: NormaliseTrigger asks CodeCommit `GetFolder` (folderPath "/", commitSpecifier the pushed commit) for the
root of a commit: its files with their blob ids and modes, its folders with their tree ids (botocore's
codecommit model, GetFolderOutput). From those it derives the image's tree id (functions/common/image_tree.py).
Locally: moto 5.2.5's CodeCommit has no GetFolder, so the emulator answers it from `git ls-tree` of the local
repository the builds check out. Differences: every repository name is that one local repository; only the root
folder ("/", or "") is answered; the encryption errors of the model are never raised.
"""

from __future__ import annotations

from sagepipe.local.codecommit import get_folder


def install() -> None:
    """Install CodeCommit's local GetFolder into moto (idempotent)."""
    get_folder.install()
