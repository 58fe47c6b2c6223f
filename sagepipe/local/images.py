"""Training images, locally: the build context of a commit, registered in the emulator's ECR.

There is no Docker engine, so a local "image" is the build context as the build's `docker build` saw it, kept
on disk, plus what the Dockerfile (read with dockerfile-parse) says SageMaker would run: the files it copies into
/opt/ml/code, and the built stage's ENV, SAGEMAKER_PROGRAM among it (the sagemaker-training toolkit
convention). The build's `docker push` (sagepipe.local.codebuild.stubs) registers in ECR a manifest whose one
layer is a content digest of the context, so the same code gives the same ECR digest, and keeps the image here
under that digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dockerfile_parse import DockerfileParser

CODE_DIR = PurePosixPath("/opt/ml/code")


class ImageError(ValueError):
    """A build context that cannot become a local training image."""


@dataclass(frozen=True)
class LocalImage:
    digest: str
    repository_uri: str
    tag: str
    commit: str
    context_digest: str
    program: str
    root: Path
    environment: dict[str, str] = field(default_factory=dict)
    """The built stage's ENV, as `docker run` starts the container with it (SAGEMAKER_PROGRAM included)."""

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def uri(self) -> str:
        return f"{self.repository_uri}@{self.digest}"


def context_digest(context_dir: Path) -> str:
    """sha256 over the build context's files: relative path, executable bit and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        relative = path.relative_to(context_dir).as_posix()
        executable = path.stat().st_mode & 0o111 != 0
        digest.update(f"{relative}\0{int(executable)}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def _parser(dockerfile: str, build_args: Mapping[str, str] | None = None) -> DockerfileParser:
    """dockerfile-parse over the text, in memory (its default would read and write ./Dockerfile)."""
    return DockerfileParser(
        fileobj=io.BytesIO(dockerfile.encode("utf-8")), env_replace=True, build_args=dict(build_args or {})
    )


def _up_to_stage(dockerfile: str, target: str) -> str:
    """The Dockerfile up to the end of stage `target` (`docker build --target`): that stage is the image."""
    lines = dockerfile.splitlines(keepends=True)
    stages = [item for item in _parser(dockerfile).structure if str(item["instruction"]).upper() == "FROM"]
    for number, stage in enumerate(stages):
        words = str(stage["value"]).split()
        if len(words) >= 3 and words[-2].upper() == "AS" and words[-1].lower() == target.lower():
            end = int(stages[number + 1]["startline"]) if number + 1 < len(stages) else len(lines)
            return "".join(lines[:end])
    raise ImageError(f'target stage "{target}" could not be found')


def _words(arguments: str) -> list[str]:
    """COPY/ADD arguments in shell form or exec (JSON array) form."""
    if arguments.startswith("["):
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as error:
            raise ImageError(f"malformed exec-form arguments: {arguments}") from error
        return [str(item) for item in parsed]
    try:
        return shlex.split(arguments)
    except ValueError as error:
        raise ImageError(f"cannot read the Dockerfile arguments {arguments!r}: {error}") from error


def image_environment(
    text: str, *, build_args: Mapping[str, str] | None = None, target: str | None = None
) -> dict[str, str]:
    """The ENV of the image a Dockerfile builds (`--build-arg`, `--target` applied): its last built stage's, every
    form and quoting applied."""
    parser = _parser(text if target is None else _up_to_stage(text, target), build_args)
    return {str(name): str(value) for name, value in parser.envs.items()}


def read_dockerfile(
    text: str, *, build_args: Mapping[str, str] | None = None, target: str | None = None
) -> tuple[str, list[tuple[str, str]]]:
    """SAGEMAKER_PROGRAM and the (source, destination) pairs copied from the context into /opt/ml/code, of the
    image `docker build --build-arg ... --target ...` would build.

    Destinations are absolute (a relative one is resolved against WORKDIR) and keep their trailing slash, which
    decides whether a single source is copied into a directory or as that name.
    """
    parser = _parser(text if target is None else _up_to_stage(text, target), build_args)
    # The image SageMaker runs is the final stage (or --target's): its ENV (dockerfile-parse applies every form and
    # quoting, and the build arguments).
    program = parser.envs.get("SAGEMAKER_PROGRAM")
    workdir = PurePosixPath("/")
    copies: list[tuple[str, str]] = []
    for instruction in parser.structure:
        keyword, rest = str(instruction["instruction"]).upper(), str(instruction["value"])
        if keyword == "FROM":
            workdir = PurePosixPath("/")
        elif keyword == "WORKDIR":
            workdir = workdir / rest.strip()
        elif keyword in {"COPY", "ADD"}:
            words = _words(rest)
            if any(word.startswith("--from") for word in words):
                continue  # from another build stage, not from the context
            *sources, destination = [word for word in words if not word.startswith("--")]
            absolute = destination if destination.startswith("/") else f"{workdir}/{destination}"
            copied_to = PurePosixPath(absolute)
            if copied_to == CODE_DIR or CODE_DIR in copied_to.parents:
                slash = "/" if destination.endswith("/") or destination in {".", "./"} else ""
                copies += [(source, str(copied_to) + slash) for source in sources]
    if not program:
        raise ImageError("the Dockerfile does not set SAGEMAKER_PROGRAM, so there is no training program to run")
    if not copies:
        raise ImageError(f"the Dockerfile copies nothing into {CODE_DIR}")
    return program, copies


class ImageStore:
    """Local images under <state dir>/images/<digest>/, indexed by ECR digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> ImageStore:
        """The store of the local runtime whose state directory this is."""
        return cls(state_dir / "images")

    def prepare(
        self,
        context_dir: Path,
        *,
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> tuple[str, str, list[tuple[str, str]]]:
        """Check the context and return (context digest, program, copies) before anything is registered.

        `dockerfile` is the Dockerfile's text (`docker build -f`); by default, the context's Dockerfile.
        """
        if dockerfile is None:
            path = context_dir / "Dockerfile"
            if not path.is_file():
                raise ImageError(f"no Dockerfile in the build context {context_dir}")
            dockerfile = path.read_text(encoding="utf-8")
        program, copies = read_dockerfile(dockerfile, build_args=build_args, target=target)
        return context_digest(context_dir), program, copies

    def save(
        self,
        context_dir: Path,
        *,
        digest: str,
        repository_uri: str,
        tag: str,
        commit: str,
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> LocalImage:
        """Keep the image registered in ECR under `digest`: its context and its /opt/ml/code tree.

        Safe across processes (two builds of one commit may push at once): each writer stages its own copy and
        renames it into place; the first one there wins, as images are immutable.
        """
        ctx_digest, program, copies = self.prepare(
            context_dir, dockerfile=dockerfile, build_args=build_args, target=target
        )
        root = self.root / digest.replace(":", "-")
        with self._lock:
            if not (root / "image.json").exists():
                staging = root.with_name(f"{root.name}.partial-{os.getpid()}-{threading.get_ident()}")
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(context_dir, staging / "context", ignore=shutil.ignore_patterns("__pycache__"))
                for source, destination in copies:
                    self._copy_into_code(context_dir, source, destination, staging / "code")
                text = dockerfile or (context_dir / "Dockerfile").read_text(encoding="utf-8")
                environment = image_environment(text, build_args=build_args, target=target)
                image = LocalImage(digest, repository_uri, tag, commit, ctx_digest, program, root, environment)
                record: dict[str, Any] = asdict(image) | {"root": str(root)}
                (staging / "image.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
                if root.exists() and not (root / "image.json").exists():
                    shutil.rmtree(root, ignore_errors=True)  # a copy left half-made by a writer that was killed
                try:
                    staging.rename(root)
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)  # another writer got there first
        found = self.find(digest)
        if found is None:
            raise ImageError(f"image {digest} was not saved")
        return found

    @staticmethod
    def _copy_into_code(context_dir: Path, source: str, destination: str, code_root: Path) -> None:
        matches = sorted(context_dir.glob(source)) if any(char in source for char in "*?[") else [context_dir / source]
        target_path = PurePosixPath(destination)
        relative = target_path.relative_to(CODE_DIR)
        for match in matches:
            if not match.exists():
                raise ImageError(f"the Dockerfile copies {source}, which is not in the build context")
            if match.is_dir():
                shutil.copytree(match, code_root / relative, dirs_exist_ok=True)
                continue
            into_dir = destination.endswith("/") or target_path == CODE_DIR or len(matches) > 1
            target = code_root / relative / match.name if into_dir else code_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(match, target)

    def find(self, digest: str) -> LocalImage | None:
        metadata = self.root / digest.replace(":", "-") / "image.json"
        if not metadata.is_file():
            return None
        record = json.loads(metadata.read_text(encoding="utf-8"))
        record["root"] = Path(record["root"])
        # An image saved before its ENV was recorded: SAGEMAKER_PROGRAM was all that was kept of it.
        record.setdefault("environment", {"SAGEMAKER_PROGRAM": record["program"]})
        return LocalImage(**record)


def manifest_for(context_digest_value: str, size: int) -> str:
    """An OCI image manifest whose one layer is the build context. moto derives the ECR image digest from the
    manifest's layer digests, so the digest is a function of the build context."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": size,
                    "digest": context_digest_value,
                }
            ],
        },
        separators=(",", ":"),
        sort_keys=True,
    )
