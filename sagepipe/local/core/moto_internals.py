"""How adapters reach into moto: by name, checked, and loudly when an upgrade moves something.

Every adapter in this package closes one gap between moto and AWS by touching a protected moto internal.
Those internals have no stability promise, so each one is looked up through `internal()` (which fails with
the adapter's name and the moto version, instead of an AttributeError deep inside an execution) and listed
in the adapter's `MOTO_INTERNALS`, which tests/contract checks one by one.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

PINNED_MOTO_VERSION = "5.2.5"


class MotoContractError(RuntimeError):
    """A moto internal that an adapter relies on is missing or has changed shape."""


@dataclass(frozen=True)
class Internal:
    """One moto internal an adapter touches: where it is, and the parameters the adapter relies on."""

    path: str
    """`package.module:Attribute.attribute`, the part after the colon resolved with getattr."""
    parameters: tuple[str, ...] = ()
    """Parameter names the adapter passes or receives (checked when the internal is callable)."""
    why: str = ""

    def resolve(self, adapter: str) -> Any:
        module_name, _, attribute_path = self.path.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            moto_defined = target
            for part in filter(None, attribute_path.split(".")):
                owner, target = target, getattr(target, part)
                # What moto defined, not an adapter's replacement of it: checking again once the adapters are
                # installed (a second install, a test that installs them) checks moto, as the first check did.
                moto_defined = original_attribute(owner, part)
                moto_defined = target if moto_defined is None else moto_defined
        except (ImportError, AttributeError) as error:
            raise MotoContractError(self._message(adapter, f"cannot be found ({error})")) from error
        if self.parameters and callable(moto_defined):
            present = set(inspect.signature(moto_defined).parameters)
            missing = [name for name in self.parameters if name not in present]
            if missing:
                raise MotoContractError(self._message(adapter, f"no longer takes {', '.join(missing)}"))
        return target

    def _message(self, adapter: str, problem: str) -> str:
        return (
            f"sagepipe adapter '{adapter}' relies on moto internal {self.path}, which {problem}. "
            f"Installed moto is {version('moto')}; sagepipe pins {PINNED_MOTO_VERSION}. "
            f"{self.why}".strip()
        )


def check_all(adapter: str, internals: Iterable[Internal]) -> None:
    """Resolve every internal an adapter declares, so that a moved one fails before anything runs."""
    for item in internals:
        item.resolve(adapter)


_ORIGINALS: dict[tuple[int, str], Any] = {}


def replace_attribute(owner: Any, name: str, replacement: Callable[..., Any] | Any) -> Any:
    """Set owner.name, remembering the first original, and return that original (None when moto had none:
    an adapter may add a handler moto lacks).

    Idempotent: installing an adapter twice wraps moto's original once, not the previous wrapper.
    """
    key = (id(owner), name)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = getattr(owner, name, None)
    setattr(owner, name, replacement)
    return _ORIGINALS[key]


def original_attribute(owner: Any, name: str) -> Any:
    """The attribute as moto defined it, before any adapter replaced it (None when moto has none)."""
    key = (id(owner), name)
    return _ORIGINALS[key] if key in _ORIGINALS else getattr(owner, name, None)
