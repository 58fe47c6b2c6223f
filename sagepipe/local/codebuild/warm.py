"""What the local build's warm `python` preloads, read from what the build runs (sagepipe.local.warm_start).

The project's buildspec runs `python -m pip install ...` and `(cd container && python -m pytest ... tests)`, whose
tests start `<sys.executable> train.py ...` several times: each a fresh interpreter importing scikit-learn on
CodeBuild, where every build is a new container. Locally these start forked from a server that has imported, once,
the modules the buildspec runs with `python -m` and what the Python files in the directories its commands `cd`
into import at their top level (read with ast, never run; their own modules left out: they are the build's code).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from sagepipe.local.codebuild.buildspec import Buildspec
from sagepipe.local.warm_start import programs_imports

_MODULE_RUN: Final = re.compile(r"\bpython[0-9.]*\s+-m\s*([A-Za-z_][\w.]*)")
"""`python -m <module>` (python3, python3.13 too) in a command."""
_CD: Final = re.compile(r"(?:^|[\s;&|(])cd\s+([\w./-]+)")
"""`cd <directory>` in a command."""
_PYTHON_NAME: Final = re.compile(r"python(?:[0-9]+(?:\.[0-9]+)?)?")
PROGRAM_FILES_LIMIT: Final = 200
"""At most this many Python files are read: a command that cds into a large tree reads no more than this."""


def preload_modules(source: Path, spec: Buildspec) -> list[str]:
    """The modules a warm server for this build imports before any of its Python starts."""
    texts = [command.text for command in spec.commands]
    modules = {match for text in texts for match in _MODULE_RUN.findall(text)}
    programs: list[Path] = []
    for text in texts:
        for directory in _CD.findall(text):
            where = (source / directory).resolve()
            if where.is_dir() and where.is_relative_to(source.resolve()) and where != source.resolve():
                programs += sorted(where.rglob("*.py"))
    return sorted(modules | set(programs_imports(programs[:PROGRAM_FILES_LIMIT])))


def python_names(venv_bin: Path, interpreter: Path) -> list[str]:
    """The names the build's `python` goes by: every python* in the venv's bin directory that is this interpreter
    (python, python3, python3.13), as a build with that directory on its PATH can reach them."""
    target = interpreter.resolve()
    return sorted(
        path.name for path in venv_bin.glob("python*") if _PYTHON_NAME.fullmatch(path.name) and path.resolve() == target
    )
