"""What a service package's provisioning sees of the stack being created, and what it returns.

The provisioner (sagepipe.local.provisioner) walks the translated template and hands each resource to the
handler of its type; the handlers of the services with a package of their own live in that package
(`<package>/provisioning.py`) and are typed against this protocol, so that no service depends on the
provisioner.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class ProvisionError(RuntimeError):
    """The template cannot be created locally."""


@dataclass
class ProvisionedResource:
    logical_id: str
    resource_type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    created: bool = True


class Stack(Protocol):
    """The stack being created, as a resource handler sees it."""

    @property
    def project_root(self) -> Path: ...

    @property
    def sam_template(self) -> dict[str, Any]: ...

    def client(self, service: str) -> Any: ...

    def identifiers_seeded(self, label: str) -> AbstractContextManager[None]:
        """moto's random identifiers drawn in the block are the same for the same label in a reset emulator."""
        ...

    def name(self, logical_id: str, *, lowercase: bool = False, limit: int = 64) -> str:
        """CloudFormation's physical name for a resource that names none."""
        ...


Handler = Callable[[Stack, str, dict[str, Any]], ProvisionedResource]
"""Creates one resource (logical id, resolved Properties) in the emulator."""
