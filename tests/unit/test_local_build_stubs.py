"""The local build's `docker` and `aws`: stubs first on the build's PATH that answer from the emulator's ECR.

Most tests serve one build's stubs from a temporary directory, pointed at the unit tests' moto server (ECR is
all they reach), and run them as a buildspec command would: as programs, with arguments, stdin and a working
directory.
The build-level tests run buildspecs whose commands reach docker and aws in ways no scanner of the command text
could see.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from sagepipe.local.codebuild import stubs
from sagepipe.local.codebuild.executor import BuildRequest, BuildResult, EmulatorAccess, run_build
from sagepipe.local.codebuild.stubs import StubConfig
from sagepipe.local.codebuild.stubs.common import ECR_PUBLIC_TOKEN
from sagepipe.local.codebuild.stubs.server import serve
from sagepipe.local.images import ImageStore, context_digest

ACCOUNT = "123456789012"
REGION = "us-east-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
GIT = shutil.which("git") or "git"
DOCKERFILE = "FROM python:3.13-slim\nENV SAGEMAKER_PROGRAM=train.py\nCOPY train.py /opt/ml/code/train.py\n"


# ---------------------------------------------------------------------------------------------- fixtures


def ecr_client(endpoint: str) -> Any:
    return boto3.client(
        "ecr", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture
def endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture
def repository(endpoint: str) -> str:
    """A fresh immutable repository (as template.yaml's), by name."""
    name = f"train-{uuid.uuid4().hex[:8]}"
    ecr_client(endpoint).create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    return name


@dataclass
class Stubs:
    """One build's stubs, run as a buildspec command runs them."""

    files: stubs.StubFiles
    cwd: Path
    images: Path

    def run(self, program: str, *args: str, stdin: str = "", env: Mapping[str, str] | None = None) -> Any:
        environment = {"PATH": "/usr/bin:/bin", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **(env or {})}
        return subprocess.run(
            [str(self.files.bin / program), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=environment,
            timeout=60,
            check=False,
        )

    def login(self) -> None:
        password = self.run("aws", "ecr", "get-login-password").stdout
        assert self.run("docker", "login", "-u", "AWS", "--password-stdin", REGISTRY, stdin=password).returncode == 0

    def build(self, tag: str, *options: str, context: str = "container") -> Any:
        return self.run("docker", "build", *options, "--tag", f"{REGISTRY}/{tag}", context)

    @property
    def log(self) -> str:
        return (self.files.root.parent / "build.log").read_text()


@contextlib.contextmanager
def make_stubs(tmp_path: Path, endpoint: str | None) -> Iterator[Stubs]:
    """One build's stubs, served for the block, with a build log and a source tree holding a training context."""
    images = tmp_path / "images"
    emulator = None if endpoint is None else EmulatorAccess(endpoint, "sagepipe-local", "sagepipe-local", images)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "build.log").touch()
    config = StubConfig(emulator=emulator, region=REGION, source_version="c0ffee", log_path=tmp_path / "build.log")
    source = tmp_path / "src"
    write(source, {"container/Dockerfile": DOCKERFILE, "container/train.py": "print('training')\n"})
    with serve(tmp_path / "stubs", config) as files:
        yield Stubs(files, source, images)


@pytest.fixture
def stub(tmp_path: Path, endpoint: str) -> Iterator[Stubs]:
    with make_stubs(tmp_path, endpoint) as served:
        yield served


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))


# ---------------------------------------------------------------------------------------------- aws ecr


def test_describe_images_of_a_missing_tag_fails_as_the_aws_cli_does(stub: Stubs, repository: str) -> None:
    """Given no image tagged `abc`, then describe-images exits 254 (the service returned an error, per the AWS CLI's
    return codes) with botocore's error line on stderr and nothing on stdout."""
    result = stub.run(
        "aws", "ecr", "describe-images", "--repository-name", repository, "--image-ids", "imageTag=abc",
        "--query", "imageDetails[0].imageDigest", "--output", "text",
    )  # fmt: skip

    assert result.returncode == 254
    assert result.stdout == ""
    assert result.stderr.startswith(
        "\nAn error occurred (ImageNotFoundException) when calling the DescribeImages operation: "
    )
    assert "abc" in result.stderr


def test_a_query_that_finds_nothing_prints_none_in_text_output(stub: Stubs, repository: str) -> None:
    """Given an empty repository, then the buildspec's cache-tag query prints `None` (text output of null), and
    JSON output prints the empty list."""
    query = "sort_by(imageDetails,&imagePushedAt)[-1].imageTags[0]"
    text = stub.run(
        "aws", "ecr", "describe-images", "--repository-name", repository, "--query", query, "--output", "text"
    )
    as_json = stub.run("aws", "ecr", "describe-images", "--repository-name", repository)

    assert (text.returncode, text.stdout) == (0, "None\n")
    assert json.loads(as_json.stdout) == {"imageDetails": []}


def test_describe_images_answers_in_the_aws_cli_shapes_after_a_push(stub: Stubs, repository: str) -> None:
    """Given two pushed images, then JSON output has ISO 8601 timestamps (CLI v2), --query sorts on them, and text
    output prints each image as a row of its scalars with its tags on IMAGETAGS lines."""
    stub.login()
    write(stub.cwd, {"other/Dockerfile": DOCKERFILE, "other/train.py": "print('other')\n"})
    for tag, context in (("first", "container"), ("second", "other")):
        assert stub.build(f"{repository}:{tag}", context=context).returncode == 0
        assert stub.run("docker", "push", f"{REGISTRY}/{repository}:{tag}").returncode == 0

    details = json.loads(stub.run("aws", "ecr", "describe-images", "--repository-name", repository).stdout)
    latest = stub.run(
        "aws", "ecr", "describe-images", "--repository-name", repository,
        "--query", "sort_by(imageDetails,&imagePushedAt)[-1].imageTags[0]", "--output", "text",
    )  # fmt: skip
    one = stub.run(
        "aws", "ecr", "describe-images", "--repository-name", repository, "--image-ids", "imageTag=first",
        "--output", "text",
    )  # fmt: skip

    pushed_at = [image["imagePushedAt"] for image in details["imageDetails"]]
    assert all(isinstance(value, str) and "T" in value for value in pushed_at), pushed_at
    assert latest.stdout == "second\n"
    (image,) = [item for item in details["imageDetails"] if item["imageTags"] == ["first"]]
    scalars = sorted(key for key, value in image.items() if not isinstance(value, dict | list))
    assert one.stdout.splitlines() == [
        "IMAGEDETAILS\t" + "\t".join(str(image[key]) for key in scalars),
        "IMAGETAGS\tfirst",
    ]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("s3", "ls"), 255, "aws s3 ls: not emulated locally"),
        (("ecr", "list-images", "--repository-name", "r"), 255, "not emulated locally"),
        (("ecr", "describe-images", "--repository-name", "r", "--max-items", "1"), 255, "not emulated locally"),
        (("ecr", "describe-images", "--repository-name", "r", "--no-such-option", "x"), 252, "Unknown options"),
        (("ecr", "describe-images"), 252, "required: --repository-name"),
        (("ecr", "describe-images", "--repository-name", "r", "--output", "table"), 255, "not emulated locally"),
    ],
    ids=["other-service", "other-operation", "pagination-option", "unknown-option", "missing-argument", "table"],
)
def test_an_aws_command_the_stub_does_not_answer_fails_loudly(
    stub: Stubs, repository: str, args: tuple[str, ...], status: int, message: str
) -> None:
    """Given a command (or an option) the local build does not emulate, then it fails with a clear message and the
    AWS CLI's exit code for it: 252 for a command line it cannot parse, 255 for anything else."""
    result = stub.run("aws", *[repository if word == "r" else word for word in args])

    assert result.returncode == status
    assert message in result.stderr
    assert result.stdout == ""


def test_no_emulator_means_no_registry_but_a_clear_error(tmp_path: Path) -> None:
    """Given a build without an emulator (as the executor's unit tests run), then an ECR call fails with a message
    that says so, and docker build still works (it needs no registry)."""
    with make_stubs(tmp_path, None) as offline:
        result = offline.run("aws", "ecr", "get-login-password")
        built = offline.build("repo:tag")

    assert result.returncode == 255
    assert "without an emulator" in result.stderr
    assert built.returncode == 0, built.stderr


# ---------------------------------------------------------------------------------------------- docker login


def test_docker_login_takes_the_emulators_ecr_password_and_refuses_another(stub: Stubs) -> None:
    password = stub.run("aws", "ecr", "get-login-password").stdout

    good = stub.run("docker", "login", "--username", "AWS", "--password-stdin", REGISTRY, stdin=password)
    wrong = stub.run("docker", "login", "--username", "AWS", "--password-stdin", REGISTRY, stdin="guess\n")
    no_user = stub.run("docker", "login", "--password-stdin", REGISTRY, stdin=password)
    empty = stub.run("docker", "login", "--username", "AWS", "--password-stdin", REGISTRY, stdin="")
    public = stub.run(
        "docker", "login", "-u", "AWS", "--password-stdin", "public.ecr.aws",
        stdin=stub.run("aws", "ecr-public", "get-login-password", "--region", "us-east-1").stdout,
    )  # fmt: skip

    assert (good.returncode, good.stdout) == (0, "Login Succeeded\n")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"Error response from daemon: login attempt to https://{REGISTRY}/v2/ failed with status: 400 Bad Request"
    )
    assert (no_user.returncode, no_user.stderr.strip()) == (1, "Must provide --username with --password-stdin")
    assert empty.returncode == 1
    assert "Cannot perform an interactive login from a non TTY device" in empty.stderr
    assert public.returncode == 0, public.stderr


def test_a_password_on_the_command_line_is_neither_recorded_nor_logged(stub: Stubs) -> None:
    password = stub.run("aws", "ecr", "get-login-password").stdout.strip()

    result = stub.run("docker", "login", "-u", "AWS", "-p", password, REGISTRY)

    assert result.returncode == 0, result.stderr
    assert "WARNING! Using --password via the CLI is insecure" in result.stderr
    (call,) = [call for call in stubs.read_calls(stub.files.root) if call.program == "docker"]
    assert call.argv == ("docker", "login", "-u", "AWS", "-p", "****", REGISTRY)
    assert password not in stub.files.calls.read_text()
    assert password not in stub.log


# ---------------------------------------------------------------------------------------------- docker build / push


def test_build_then_push_registers_the_context_as_the_local_image_training_resolves(
    stub: Stubs, repository: str, endpoint: str
) -> None:
    """Given a login and a built context, when it is pushed, then ECR has the tag with the digest the push printed,
    and the local image under that digest is the context, with its SAGEMAKER_PROGRAM and /opt/ml/code tree; the
    recorded build call keeps its labels and build arguments."""
    stub.login()
    built = stub.build(f"{repository}:abc", "--label", "org.opencontainers.image.revision=abc", "--build-arg", "X=1")
    (stub.cwd / "container" / "train.py").write_text("changed after the build\n")  # the image is what was built
    pushed = stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")

    assert built.returncode == 0, built.stderr
    assert pushed.returncode == 0, pushed.stderr
    (detail,) = ecr_client(endpoint).describe_images(repositoryName=repository)["imageDetails"]
    digest = detail["imageDigest"]
    assert pushed.stdout.splitlines() == [
        f"The push refers to repository [{REGISTRY}/{repository}]",
        f"abc: digest: {digest} size: {pushed.stdout.split('size: ')[1].strip()}",
    ]
    assert detail["imageTags"] == ["abc"]
    image = ImageStore(stub.images).find(digest)
    assert image is not None
    assert (image.program, image.tag, image.commit) == ("train.py", "abc", "c0ffee")
    assert (image.code_dir / "train.py").read_text() == "print('training')\n"
    assert image.uri == f"{REGISTRY}/{repository}@{digest}"
    build_call = next(call for call in stubs.read_calls(stub.files.root) if call.argv[:2] == ("docker", "build"))
    assert "org.opencontainers.image.revision=abc" in build_call.argv
    assert build_call.cwd == str(stub.cwd)


def test_the_same_context_gives_the_same_digest(tmp_path: Path, endpoint: str, repository: str) -> None:
    """Given one context built and pushed under two tags by two builds, then ECR gives both the same digest: the
    manifest's one layer is the context's content digest (sagepipe.local.images)."""
    digests = []
    for name, tag in (("one", "a"), ("two", "b")):
        with make_stubs(tmp_path / name, endpoint) as build_stubs:
            build_stubs.login()
            assert build_stubs.build(f"{repository}:{tag}").returncode == 0
            pushed = build_stubs.run("docker", "push", f"{REGISTRY}/{repository}:{tag}")
            digests.append(pushed.stdout.split("digest: ")[1].split()[0])

    assert digests[0] == digests[1]
    assert context_digest(tmp_path / "one" / "src" / "container") in json.dumps(
        ecr_client(endpoint).batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "a"}])
    )


def test_pushing_a_tag_that_exists_fails_like_an_immutable_ecr_repository(stub: Stubs, repository: str) -> None:
    """Given a tag already pushed, then pushing it again (even the same image) exits 1 with ECR's tag-immutability
    message, and the tag keeps its first image."""
    stub.login()
    stub.build(f"{repository}:abc")
    first = stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")

    again = stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")

    assert first.returncode == 0
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"tag invalid: The image tag 'abc' already exists in the '{repository}' repository and cannot be "
        "overwritten because the repository is immutable."
    )


def test_an_image_is_retagged_by_its_manifest_and_an_existing_tag_is_refused(stub: Stubs, repository: str) -> None:
    """Given a pushed image, when its manifest is read with batch-get-image and put again under a new tag (ECR user
    guide, "Retagging an image in Amazon ECR"), then the image has both tags; putting a tag that exists already
    exits 254 with ECR's error, as the CLI does for any service error."""
    stub.login()
    stub.build(f"{repository}:tree-1")
    assert stub.run("docker", "push", f"{REGISTRY}/{repository}:tree-1").returncode == 0
    manifest = stub.run(
        "aws", "ecr", "batch-get-image", "--repository-name", repository, "--image-ids", "imageTag=tree-1",
        "--query", "images[0].imageManifest", "--output", "text",
    )  # fmt: skip
    assert manifest.returncode == 0
    (stub.cwd / "manifest.json").write_text(manifest.stdout.strip(), encoding="utf-8")

    tagged = stub.run(
        "aws", "ecr", "put-image", "--repository-name", repository, "--image-tag", "commit-1",
        "--image-manifest", "file://manifest.json",
    )  # fmt: skip
    again = stub.run(
        "aws", "ecr", "put-image", "--repository-name", repository, "--image-tag", "commit-1",
        "--image-manifest", manifest.stdout.strip(),
    )  # fmt: skip

    assert tagged.returncode == 0, tagged.stderr
    details = json.loads(stub.run("aws", "ecr", "describe-images", "--repository-name", repository).stdout)
    (image,) = details["imageDetails"]
    assert sorted(image["imageTags"]) == ["commit-1", "tree-1"]
    assert json.loads(tagged.stdout)["image"]["imageId"]["imageDigest"] == image["imageDigest"]
    assert again.returncode == 254
    assert "ImageAlreadyExistsException" in again.stderr or "ImageTagAlreadyExistsException" in again.stderr


def test_push_needs_a_login_and_a_built_image(stub: Stubs, repository: str) -> None:
    stub.build(f"{repository}:abc")
    before_login = stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")
    stub.login()
    not_built = stub.run("docker", "push", f"{REGISTRY}/{repository}:other")

    assert (before_login.returncode, before_login.stderr.strip()) == (1, "no basic auth credentials")
    assert not_built.returncode == 1
    assert not_built.stderr.strip() == f"An image does not exist locally with the tag: {REGISTRY}/{repository}"


def test_pull_of_a_pushed_image_succeeds_and_of_a_missing_one_fails(stub: Stubs, repository: str) -> None:
    stub.login()
    stub.build(f"{repository}:abc")
    stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")

    found = stub.run("docker", "pull", f"{REGISTRY}/{repository}:abc")
    missing = stub.run("docker", "pull", f"{REGISTRY}/{repository}:nope")

    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[-1] == f"{REGISTRY}/{repository}:abc"
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"Error response from daemon: manifest for {REGISTRY}/{repository}:nope not found: manifest unknown: "
        "Requested image not found"
    )


def test_build_honours_dockerfile_build_args_and_target(stub: Stubs, repository: str) -> None:
    """Given a Dockerfile elsewhere (-f) whose program comes from a build argument and whose wanted stage is not the
    last one (--target), then the pushed image runs that stage's program; an unknown option is accepted and
    recorded, an unknown stage fails the build as Docker does."""
    write(
        stub.cwd,
        {
            "docker/training.Dockerfile": """\
                FROM python:3.13-slim AS train
                ARG PROGRAM=default.py
                ENV SAGEMAKER_PROGRAM=$PROGRAM
                COPY train.py /opt/ml/code/train.py
                FROM python:3.13-slim AS serve
                ENV SAGEMAKER_PROGRAM=serve.py
                COPY train.py /opt/ml/code/serve.py
            """
        },
    )
    stub.login()
    options = ("-f", "docker/training.Dockerfile", "--build-arg", "PROGRAM=train.py", "--target", "train")

    built = stub.build(f"{repository}:abc", *options, "--some-future-flag")
    wrong_stage = stub.build(f"{repository}:x", "-f", "docker/training.Dockerfile", "--target", "nope")
    pushed = stub.run("docker", "push", f"{REGISTRY}/{repository}:abc")

    assert built.returncode == 0, built.stderr
    assert wrong_stage.returncode == 1
    assert 'target stage "nope" could not be found' in wrong_stage.stderr
    digest = pushed.stdout.split("digest: ")[1].split()[0]
    image = ImageStore(stub.images).find(digest)
    assert image is not None
    assert image.program == "train.py"
    assert [path.name for path in image.code_dir.iterdir()] == ["train.py"]
    build_call = next(call for call in stubs.read_calls(stub.files.root) if call.argv[:2] == ("docker", "build"))
    assert "--some-future-flag" in build_call.argv


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--rm", "image"),
        ("images",),
        ("build", "--push", "-t", f"{REGISTRY}/r:t", "container"),
        ("version",),
        ("login", "-u", "me", "-p", "secret", "registry.example.com"),
        ("pull", "python:3.13-slim"),
    ],
    ids=["run", "images", "build-push", "version", "login-elsewhere", "pull-from-docker-hub"],
)
def test_a_docker_command_the_stub_does_not_answer_fails_loudly(stub: Stubs, args: tuple[str, ...]) -> None:
    result = stub.run("docker", *args)

    assert result.returncode == 1
    assert "not emulated locally" in result.stderr


def test_each_call_is_recorded_and_logged(stub: Stubs) -> None:
    """Given two calls, then each is one JSON line in the record (argv, cwd, time, exit status) and one line in the
    build log, in the order they ended."""
    stub.run("aws", "ecr-public", "get-login-password")
    stub.run("docker", "images")

    lines = [json.loads(line) for line in stub.files.calls.read_text().splitlines()]
    assert [(line["argv"], line["cwd"], line["exit_status"]) for line in lines] == [
        (["aws", "ecr-public", "get-login-password"], str(stub.cwd), 0),
        (["docker", "images"], str(stub.cwd), 1),
    ]
    assert all(line["time"] for line in lines)
    assert "[sagepipe local aws] aws ecr-public get-login-password -> exit status 0" in stub.log
    assert "[sagepipe local docker] docker images -> exit status 1" in stub.log


# ---------------------------------------------------------------------------------------------- in a build


def git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    return subprocess.run(
        [GIT, *identity, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_buildspec(
    tmp_path: Path, buildspec: str, endpoint: str | None, files: Mapping[str, str] | None = None, **env: str
) -> BuildResult:
    repo = tmp_path / "repo"
    write(repo, {"buildspec.yml": buildspec, "container/Dockerfile": DOCKERFILE, "container/train.py": "x = 1\n"})
    write(repo, files or {})
    for script in repo.rglob("*.sh"):
        script.chmod(0o755)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    emulator = None if endpoint is None else EmulatorAccess(endpoint, "k", "s", tmp_path / "images")
    return run_build(
        BuildRequest(
            repository=repo,
            source_version=git(repo, "rev-parse", "HEAD"),
            build_id="project:build",
            environment={"AWS_REGION": REGION, **env},
            work_dir=tmp_path / "work",
            log_path=tmp_path / "build.log",
            timeout_seconds=120,
            emulator=emulator,
        )
    )


def test_indirect_calls_reach_the_stubs_too(tmp_path: Path) -> None:
    """Given a buildspec that reaches aws and docker through eval, a function, $(...), a script file, `bash -c`
    and xargs (none of which a reading of the command text could see), then every call is answered by the stubs
    and recorded with its working directory."""
    buildspec = """\
        version: 0.2
        env:
          shell: bash
        phases:
          build:
            commands:
              - eval "aws ecr-public get-login-password > eval.txt"
              - token() { aws ecr-public get-login-password; }
              - token > function.txt
              - SUBSTITUTED=$(aws ecr-public get-login-password) && echo "$SUBSTITUTED" > substitution.txt
              - ./scripts/login.sh > script.txt
              - bash -c 'aws ecr-public get-login-password' > bash-c.txt
              - echo get-login-password | xargs aws ecr-public > xargs.txt
              - (cd container && docker build --tag local/image:1 .)
    """
    script = "#!/bin/sh\naws ecr-public get-login-password | docker login -u AWS --password-stdin public.ecr.aws\n"

    result = run_buildspec(tmp_path, buildspec, None, {"scripts/login.sh": script})
    log = result.log_path.read_text()

    assert result.build_status == "SUCCEEDED", log
    for name in ("eval", "function", "substitution", "bash-c", "xargs"):
        assert (result.source_dir / f"{name}.txt").read_text() == f"{ECR_PUBLIC_TOKEN}\n", name
    assert (result.source_dir / "script.txt").read_text() == "Login Succeeded\n"
    programs = [call.argv[:3] for call in result.tool_calls]
    assert programs.count(("aws", "ecr-public", "get-login-password")) == 6
    assert ("docker", "login", "-u") in programs
    build_call = next(call for call in result.tool_calls if call.argv[:2] == ("docker", "build"))
    assert build_call.cwd == str(result.source_dir / "container")
    assert all(call.exit_status == 0 for call in result.tool_calls)
    assert "[sagepipe local docker] docker build --tag local/image:1 . -> exit status 0" in log


def test_a_failing_registry_call_fails_its_command_like_any_other(tmp_path: Path, endpoint: str) -> None:
    """Given a build command whose docker push fails (nothing was built under that tag), then the command fails
    with docker's exit status 1, and the build FAILED at BUILD with that command in the reason."""
    buildspec = f"""\
        version: 0.2
        env:
          shell: bash
        phases:
          build:
            commands:
              - docker push {REGISTRY}/never-built:tag
    """

    result = run_buildspec(tmp_path, buildspec, endpoint)

    assert result.build_status == "FAILED"
    assert result.failure_message == (
        f"COMMAND_EXECUTION_ERROR: Error while executing command: docker push {REGISTRY}/never-built:tag. "
        "Reason: exit status 1"
    )


def test_the_stubs_credentials_stay_out_of_the_builds_environment(tmp_path: Path, endpoint: str) -> None:
    """Given a build with an emulator, then its commands see the stubs first on PATH, and no endpoint, credential or
    variable of the stubs' own: they find their configuration from their own path."""
    buildspec = """\
        version: 0.2
        phases:
          build:
            commands:
              - env -0 > env.bin
              - command -v docker > docker.txt
    """

    result = run_buildspec(tmp_path, buildspec, endpoint)

    assert result.build_status == "SUCCEEDED", result.log_path.read_text()
    entries = (result.source_dir / "env.bin").read_bytes().decode().split("\0")
    env = dict(entry.split("=", 1) for entry in entries if entry)
    assert not {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & env.keys()
    assert endpoint not in "".join(entries)
    assert not [name for name in env if "STUB" in name or "SAGEPIPE" in name]
    docker = Path((result.source_dir / "docker.txt").read_text().strip())
    assert env["PATH"].split(":")[0] == str(docker.parent)
