"""How adapters name moto's internals: a check made once the adapters are installed still checks moto's own."""

from __future__ import annotations

import sys
import types

import pytest

from sagepipe.local.core import moto_internals
from sagepipe.local.core.moto_internals import Internal, MotoContractError, replace_attribute


class Backend:
    """Stands in for a moto backend class."""

    def create_thing(self, name: str, client_token: str) -> str:
        return f"{name}:{client_token}"


@pytest.fixture
def fake_moto(monkeypatch: pytest.MonkeyPatch) -> type[Backend]:
    """A module that stands in for one of moto's, with a class of its own; replacements are forgotten after."""
    module = types.ModuleType("fake_moto_models")
    holder = type("Backend", (Backend,), {"create_thing": Backend.create_thing})
    module.Backend = holder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_moto_models", module)
    monkeypatch.setattr(moto_internals, "_ORIGINALS", {})
    return holder


def test_an_internal_an_adapter_replaced_is_checked_as_moto_defined_it(fake_moto: type[Backend]) -> None:
    """Given an internal whose parameters an adapter relies on, replaced by that adapter with a wrapper of another
    signature (as installing it does);
    When the internal is checked again (a second install in the process, or a test that installed the adapters);
    Then the check reads moto's own method, not the wrapper, and passes; and a parameter moto's method lacks
    still fails it."""
    # Given
    internal = Internal("fake_moto_models:Backend.create_thing", parameters=("self", "name", "client_token"))
    internal.resolve("an-adapter")

    def wrapper(*args: object, **kwargs: object) -> str:
        return "wrapped"

    replace_attribute(fake_moto, "create_thing", wrapper)

    # When / Then
    assert internal.resolve("an-adapter") is wrapper, "resolve gives what is installed now"
    missing = Internal("fake_moto_models:Backend.create_thing", parameters=("self", "model_package_name"))
    with pytest.raises(MotoContractError, match="no longer takes model_package_name"):
        missing.resolve("an-adapter")
