"""What the docker and aws stubs share: the call being answered, ECR's registry names, and the emulator's client."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from sagepipe.local.codebuild.stubs import StubConfig, StubFiles

ECR_HOST: Final = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?"
)
"""A private registry's host, <account>.dkr.ecr.<region>.amazonaws.com (Amazon ECR User Guide, "Amazon ECR
private registry": the registry URL is https://aws_account_id.dkr.ecr.region.amazonaws.com)."""

ECR_PUBLIC_HOST: Final = "public.ecr.aws"
ECR_PUBLIC_TOKEN: Final = "sagepipe-local-ecr-public-token"  # noqa: S105 - what the local `aws ecr-public` hands out
"""The token `aws ecr-public get-login-password` prints locally, and the one `docker login public.ecr.aws` takes."""


def ecr_password(ecr: Any, registry_id: str | None = None) -> str:
    """The password of the token GetAuthorizationToken gives (its decoded form is "AWS:<password>"), as `aws ecr
    get-login-password` prints it and `docker login` to ECR takes it."""
    response = ecr.get_authorization_token(**({"registryIds": [registry_id]} if registry_id else {}))
    token = base64.b64decode(response["authorizationData"][0]["authorizationToken"]).decode()
    return token.partition(":")[2]


class NotEmulated(Exception):
    """A command, or a form of one, the local build does not answer: the call fails loudly."""


@dataclass
class Call:
    """One call of a stub, as the stub server answers it: its arguments, where it ran, and its standard streams."""

    program: str
    args: list[str]
    cwd: Path
    environment: dict[str, str]
    """The calling command's environment (for AWS_REGION, AWS_DEFAULT_OUTPUT, a bare --build-arg NAME)."""
    files: StubFiles
    config: StubConfig
    clients: Callable[[str, str], Any]
    """A botocore client of the emulator for (service, region)."""
    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    notes: list[str] = field(default_factory=list)
    """What the call did, for its line in the build log."""

    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def region(self, explicit: str | None = None) -> str:
        """--region, else AWS_REGION, else AWS_DEFAULT_REGION (the AWS CLI's order), else the project's."""
        return (
            explicit
            or self.environment.get("AWS_REGION")
            or self.environment.get("AWS_DEFAULT_REGION")
            or self.config.region
        )

    def client(self, service: str, region: str) -> Any:
        """A client of the emulator, with the local credentials: never the user's, never the build's."""
        if self.config.emulator is None:
            raise NotEmulated("this build runs without an emulator, so no registry answers")
        return self.clients(service, region)

    def image_store(self) -> Path:
        """Where pushed images are kept for training (sagepipe.local.images)."""
        if self.config.emulator is None:
            raise NotEmulated("this build runs without an emulator, so no image can be kept for training")
        return self.config.emulator.image_store


@dataclass(frozen=True)
class Reference:
    """An image reference, [host/]path[:tag][@digest], read as Docker reads one."""

    host: str
    repository: str
    """The path under the host (an ECR repository name)."""
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> Reference:
        rest, _, digest = text.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        tag = None
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
        first, _, path = rest.partition("/")
        # Docker's rule: the first component is a registry host if it has a dot or a port, or is localhost.
        if path and ("." in first or ":" in first or first == "localhost"):
            host, repository = first, path
        else:
            host, repository = "docker.io", rest
        if not repository or (tag is not None and not tag) or (digest == "" and "@" in text):
            raise ValueError(f"invalid reference format: {text}")
        return cls(host, repository, tag, digest or None)

    def with_default_tag(self) -> Reference:
        """Docker's default: no tag and no digest means `latest`."""
        if self.tag is None and self.digest is None:
            return Reference(self.host, self.repository, "latest", None)
        return self

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def ecr(self) -> re.Match[str] | None:
        """The ECR registry's account and region, if this reference names a private ECR registry."""
        return ECR_HOST.fullmatch(self.host)
