"""The local build's `docker`: build, push, pull and login, against the emulator's ECR.

A build's Docker daemon is its own, as in CodeBuild's container: the images it built (a snapshot of the build
context), the ones it pulled and the registries it logged in to are kept in the stubs' `docker` directory.
Messages are the Docker CLI's and ECR's own, so a buildspec's error handling meets what it would meet on AWS:

- `docker login`: "Login Succeeded"; "Must provide --username with --password-stdin"; an empty password
  "Error: Cannot perform an interactive login from a non TTY device" (docker/cli cli/command/registry/login.go,
  cli/command/registry.go); a wrong ECR token "Error response from daemon: login attempt to https://HOST/v2/
  failed with status: 400 Bad Request" (seen in aws/aws-cli#4962 and #5317).
- `docker push`: "The push refers to repository [NAME]", then "TAG: digest: DIGEST size: N"; "An image does
  not exist locally with the tag: NAME" (docker/cli e2e/image/push_test.go); "no basic auth credentials"
  before a login (aws/aws-cli#3042, aws-actions/amazon-ecr-login#431); a tag that exists in an immutable
  repository "tag invalid: The image tag 'TAG' already exists in the 'REPO' repository and cannot be
  overwritten because the repository is immutable." with exit status 1 (a CodeBuild log in
  aws/containers-roadmap#862; the same for an identical image, #2380).
- `docker pull` of a missing image: "Error response from daemon: manifest for REF not found: manifest unknown:
  Requested image not found" (the daemon's wording, moby/moby#31430, with ECR's message, as ECS reports a pull of
  a missing ECR tag).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from sagepipe.local.codebuild.stubs.common import (
    ECR_HOST,
    ECR_PUBLIC_HOST,
    ECR_PUBLIC_TOKEN,
    Call,
    NotEmulated,
    Reference,
    ecr_password,
)
from sagepipe.local.images import ImageError, ImageStore, context_digest, manifest_for, read_dockerfile

# docker's global options (`docker [OPTIONS] COMMAND`), those that take a value and those that do not.
_GLOBAL_VALUE_OPTIONS: Final = frozenset(
    {"--config", "-c", "--context", "-H", "--host", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey"}
)
_GLOBAL_FLAGS: Final = frozenset({"-D", "--debug", "--tls", "--tlsverify"})

# `docker build` / `docker buildx build` options (docs.docker.com/reference/cli/docker/buildx/build/ and the legacy
# builder's docker/image/build/): the ones that take a value; every other option is read as a flag.
_BUILD_VALUE_OPTIONS: Final = frozenset(
    {
        "--add-host", "--allow", "--annotation", "--attest", "--build-arg", "--build-context", "--builder",
        "--cache-from", "--cache-to", "--call", "--cgroup-parent", "-f", "--file", "--iidfile", "--label",
        "--metadata-file", "--network", "--no-cache-filter", "-o", "--output", "--platform", "--progress",
        "--secret", "--shm-size", "--ssh", "-t", "--tag", "--target", "--ulimit", "--cpu-period", "--cpu-quota",
        "-c", "--cpu-shares", "--cpuset-cpus", "--cpuset-mems", "--isolation", "-m", "--memory", "--memory-swap",
        "--security-opt",
    }
)  # fmt: skip
_NOT_EMULATED_BUILD_OPTIONS: Final = {
    "--push": "pushes from the builder",
    "-o": "exports the result elsewhere",
    "--output": "exports the result elsewhere",
}


# ---------------------------------------------------------------------------------------------- the daemon


@dataclass
class DaemonState:
    """The build's Docker daemon: images by reference, and the registries logged in to."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Built images by tagged reference: their snapshot, Dockerfile, build arguments, target and labels."""
    pulled: dict[str, str] = field(default_factory=dict)
    """Pulled references and their digest."""
    logins: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _daemon(root: Path) -> Iterator[DaemonState]:
    """The daemon's state, locked for this call and saved when the block ends without an error."""
    with (root / "state.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "state.json"
        state = DaemonState(**json.loads(path.read_text(encoding="utf-8"))) if path.exists() else DaemonState()
        yield state
        path.write_text(json.dumps(state.__dict__, indent=2), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- the command


def run(call: Call) -> int:
    args = list(call.args)
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option.split("=", 1)[0] in _GLOBAL_VALUE_OPTIONS and "=" not in option and args:
            args.pop(0)
        elif option not in _GLOBAL_FLAGS and option.split("=", 1)[0] not in _GLOBAL_VALUE_OPTIONS:
            raise NotEmulated(f"docker {option}: not emulated locally")
    if args[:1] in (["image"], ["buildx"]) and args[1:2] in (["build"], ["push"], ["pull"]):
        args = args[1:]
    command = args[0] if args else ""
    handlers: dict[str, Callable[[Call, list[str]], int]] = {
        "build": _build,
        "push": _push,
        "pull": _pull,
        "login": _login,
    }
    if command not in handlers:
        raise NotEmulated(
            f"docker {command or '(no command)'}: not emulated locally; the local build answers docker build, push, "
            "pull and login"
        )
    return handlers[command](call, args[1:])


@dataclass
class _Options:
    values: dict[str, list[str]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)

    def all(self, *names: str) -> list[str]:
        return [value for name in names for value in self.values.get(name, [])]

    def last(self, *names: str) -> str | None:
        found = self.all(*names)
        return found[-1] if found else None


def _options(args: list[str], value_options: frozenset[str]) -> _Options:
    """Read options as Docker's flag parser does: `--name value`, `--name=value`, `-n value`, `-nvalue`, `--`."""
    parsed = _Options()
    remaining = list(args)
    while remaining:
        word = remaining.pop(0)
        if word == "--":
            parsed.positional += remaining
            break
        if not word.startswith("-") or word == "-":
            parsed.positional.append(word)
            continue
        name, equals, value = word.partition("=")
        if not word.startswith("--") and len(word) > 2 and word[:2] in value_options:
            name, equals, value = word[:2], "=", word[2:]
        if name in value_options:
            if not equals:
                if not remaining:
                    raise NotEmulated(f"flag needs an argument: {name}")
                value = remaining.pop(0)
            parsed.values.setdefault(name, []).append(value)
        else:
            parsed.flags.append(word)
    return parsed


# ---------------------------------------------------------------------------------------------- docker build


def _build(call: Call, args: list[str]) -> int:
    options = _options(args, _BUILD_VALUE_OPTIONS)
    for option, why in _NOT_EMULATED_BUILD_OPTIONS.items():
        if option in options.values or option in options.flags:
            raise NotEmulated(f"docker build {option} {why}: not emulated locally; build, then docker push")
    if len(options.positional) != 1:
        call.err('ERROR: "docker buildx build" requires exactly 1 argument.')
        return 1
    (context_arg,) = options.positional
    if context_arg == "-" or "://" in context_arg or context_arg.startswith("git@"):
        raise NotEmulated(f"docker build from {context_arg}: not emulated locally; give a context directory")
    cwd = call.cwd
    context_dir = cwd / context_arg
    dockerfile_arg = options.last("-f", "--file")
    if dockerfile_arg == "-":
        raise NotEmulated("docker build -f - (a Dockerfile on stdin): not emulated locally")
    dockerfile = cwd / dockerfile_arg if dockerfile_arg else context_dir / "Dockerfile"
    if not context_dir.is_dir():
        call.err(f'ERROR: failed to build: unable to prepare context: path "{context_arg}" not found')
        return 1
    if not dockerfile.is_file():
        call.err(f"ERROR: failed to build: failed to read dockerfile: open {dockerfile}: no such file or directory")
        return 1
    build_args = _key_values(options.all("--build-arg"), call.environment)
    labels = _key_values(options.all("--label"), {})
    target = options.last("--target")
    try:
        tags = [str(Reference.parse(tag).with_default_tag()) for tag in options.all("-t", "--tag")]
    except ValueError as error:
        call.err(f"ERROR: failed to build: {error}")
        return 1
    text = dockerfile.read_text(encoding="utf-8")
    try:
        read_dockerfile(text, build_args=build_args, target=target)
    except ImageError as error:
        call.err(f"ERROR: failed to build: the local runtime cannot run this image: {error}")
        return 1
    snapshot, digest, size = _snapshot(call.files.docker / "contexts", context_dir)
    image = {
        "context": str(snapshot),
        "context_digest": digest,
        "size": size,
        "dockerfile": text,
        "build_args": build_args,
        "target": target,
        "labels": labels,
    }
    with _daemon(call.files.docker) as daemon:
        for tag in tags:
            daemon.images[tag] = image
    call.out(f"Successfully built {digest.removeprefix('sha256:')[:12]}")
    for tag in tags:
        call.out(f"Successfully tagged {tag}")
    call.notes.append(f"the context {context_arg} ({digest}) is the image" + (f" {', '.join(tags)}" if tags else ""))
    return 0


def _key_values(items: list[str], environment: dict[str, str]) -> dict[str, str]:
    """NAME=value items; a bare NAME takes its value from the environment, as --build-arg does, or is left out."""
    found: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if equals:
            found[name] = value
        elif name in environment:
            found[name] = environment[name]
    return found


def _snapshot(root: Path, context_dir: Path) -> tuple[Path, str, int]:
    """Copy the build context (as the engine sends it to the builder), and return the copy, its digest and size.

    Later commands may change the source tree; the image stays what was built.
    """
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{hashlib.sha256(str(context_dir).encode()).hexdigest()[:12]}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(context_dir, staging, ignore=shutil.ignore_patterns("__pycache__"))
    digest = context_digest(staging)
    size = sum(path.stat().st_size for path in staging.rglob("*") if path.is_file())
    snapshot = root / digest.removeprefix("sha256:")
    if snapshot.exists():
        shutil.rmtree(staging)
    else:
        staging.rename(snapshot)
    return snapshot, digest, size


# ---------------------------------------------------------------------------------------------- docker push


def _push(call: Call, args: list[str]) -> int:
    options = _options(args, frozenset({"--platform"}))
    if {"-a", "--all-tags"} & set(options.flags):
        raise NotEmulated("docker push --all-tags: not emulated locally; push one tag at a time")
    if len(options.positional) != 1:
        call.err('"docker push" requires exactly 1 argument.')
        return 1
    reference = Reference.parse(options.positional[0]).with_default_tag()
    registry = _ecr_registry(reference, "push")
    call.out(f"The push refers to repository [{reference.name}]")
    with _daemon(call.files.docker) as daemon:
        image = daemon.images.get(str(reference))
        logged_in = reference.host in daemon.logins
    if image is None or reference.tag is None:
        call.err(f"An image does not exist locally with the tag: {reference.name}")
        return 1
    if not logged_in:
        call.err("no basic auth credentials")
        return 1
    account, region = registry["account"], registry["region"]
    ecr = call.client("ecr", region)
    try:
        repository = ecr.describe_repositories(registryId=account, repositoryNames=[reference.repository])
    except ClientError as error:
        call.err(f"name unknown: {error.response['Error'].get('Message', '')}")
        return 1
    immutable = repository["repositories"][0].get("imageTagMutability", "MUTABLE").startswith("IMMUTABLE")
    manifest = manifest_for(image["context_digest"], image["size"])
    try:
        pushed = ecr.put_image(
            registryId=account, repositoryName=reference.repository, imageManifest=manifest, imageTag=reference.tag
        )
        digest = pushed["image"]["imageId"]["imageDigest"]
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in {"ImageTagAlreadyExistsException", "ImageAlreadyExistsException"}:
            raise
        if immutable:
            call.err(
                f"tag invalid: The image tag '{reference.tag}' already exists in the '{reference.repository}' "
                "repository and cannot be overwritten because the repository is immutable."
            )
            call.notes.append("the tag exists and the repository is immutable")
            return 1
        # A mutable repository that already holds this very image under this tag: pushing it again changes nothing.
        found = ecr.describe_images(
            registryId=account, repositoryName=reference.repository, imageIds=[{"imageTag": reference.tag}]
        )
        digest = found["imageDetails"][0]["imageDigest"]
    ImageStore(call.image_store()).save(
        Path(image["context"]),
        digest=digest,
        repository_uri=reference.name,
        tag=reference.tag,
        commit=call.config.source_version,
        dockerfile=image["dockerfile"],
        build_args=image["build_args"],
        target=image["target"],
    )
    call.out(f"{reference.tag}: digest: {digest} size: {len(manifest.encode())}")
    call.notes.append(f"pushed {reference.name}@{digest}")
    return 0


def _ecr_registry(reference: Reference, verb: str) -> dict[str, str]:
    match = reference.ecr
    if match is None:
        raise NotEmulated(
            f"docker {verb} {reference}: not emulated locally; the only registry here is the emulator's ECR "
            "(<account>.dkr.ecr.<region>.amazonaws.com)"
        )
    return match.groupdict()


# ---------------------------------------------------------------------------------------------- docker pull


def _pull(call: Call, args: list[str]) -> int:
    options = _options(args, frozenset({"--platform"}))
    if {"-a", "--all-tags"} & set(options.flags):
        raise NotEmulated("docker pull --all-tags: not emulated locally")
    if len(options.positional) != 1:
        call.err('"docker pull" requires exactly 1 argument.')
        return 1
    reference = Reference.parse(options.positional[0]).with_default_tag()
    registry = _ecr_registry(reference, "pull")
    with _daemon(call.files.docker) as daemon:
        logged_in = reference.host in daemon.logins
    if not logged_in:
        manifest = reference.digest or reference.tag
        call.err(
            f'Error response from daemon: Head "https://{reference.host}/v2/{reference.repository}/manifests/'
            f'{manifest}": no basic auth credentials'
        )
        return 1
    image_id = {"imageDigest": reference.digest} if reference.digest else {"imageTag": str(reference.tag)}
    try:
        found = call.client("ecr", registry["region"]).describe_images(
            registryId=registry["account"], repositoryName=reference.repository, imageIds=[image_id]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "RepositoryNotFoundException":
            message = error.response["Error"].get("Message", "")
            call.err(f"Error response from daemon: repository {reference.name} not found: name unknown: {message}")
            return 1
        if error.response["Error"]["Code"] != "ImageNotFoundException":
            raise
        call.err(
            f"Error response from daemon: manifest for {reference} not found: manifest unknown: "
            "Requested image not found"
        )
        call.notes.append("no such image")
        return 1
    digest = found["imageDetails"][0]["imageDigest"]
    with _daemon(call.files.docker) as daemon:
        daemon.pulled[str(reference)] = digest
    call.out(f"{reference.tag or reference.digest}: Pulling from {reference.repository}")
    call.out(f"Digest: {digest}")
    call.out(f"Status: Downloaded newer image for {reference}")
    call.out(str(reference))
    call.notes.append(f"{reference} is {digest}")
    return 0


# ---------------------------------------------------------------------------------------------- docker login


def _login(call: Call, args: list[str]) -> int:
    options = _options(args, frozenset({"-u", "--username", "-p", "--password"}))
    username = options.last("-u", "--username") or ""
    password = options.last("-p", "--password") or ""
    from_stdin = "--password-stdin" in options.flags
    if len(options.positional) > 1:
        call.err('"docker login" requires at most 1 argument.')
        return 1
    host = options.positional[0] if options.positional else "docker.io"
    host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    if password:
        call.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
        if from_stdin:
            call.err("--password and --password-stdin are mutually exclusive")
            return 1
    if from_stdin:
        if not username:
            call.err("Must provide --username with --password-stdin")
            return 1
        password = call.stdin.read().removesuffix("\n").removesuffix("\r")
    if not password or not username:
        call.err("Error: Cannot perform an interactive login from a non TTY device")
        return 1
    registry = ECR_HOST.fullmatch(host)
    if host == ECR_PUBLIC_HOST:
        accepted = password == ECR_PUBLIC_TOKEN
    elif registry is not None:
        expected = ecr_password(call.client("ecr", registry["region"]), registry["account"])
        accepted = username == "AWS" and password == expected
    else:
        raise NotEmulated(
            f"docker login {host}: not emulated locally; the registries here are the emulator's ECR "
            f"(<account>.dkr.ecr.<region>.amazonaws.com) and {ECR_PUBLIC_HOST}"
        )
    if not accepted:
        call.err(f"Error response from daemon: login attempt to https://{host}/v2/ failed with status: 400 Bad Request")
        call.notes.append(f"refused: not a token the emulator issued for {host}")
        return 1
    with _daemon(call.files.docker) as daemon:
        if host not in daemon.logins:
            daemon.logins.append(host)
    call.out("Login Succeeded")
    call.notes.append(f"logged in to {host}")
    return 0
