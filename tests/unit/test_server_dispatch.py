"""moto's dispatcher asks for a response class's method names on every request; the adapter's answer
(sagepipe/local/core/server_dispatch.py) is moto's, and follows a class that gains a handler."""

from __future__ import annotations

from moto.core.responses import BaseResponse
from moto.core.utils import method_names_from_class as motos_method_names

from sagepipe.local.core.server_dispatch import method_names_from_class


def test_the_names_are_moto_s_and_follow_a_class_that_gains_a_handler() -> None:
    """Given a response class, when its names are asked for, a handler is added to it, and they are asked for
    again, then each answer is the one moto's own function gives at that moment, the second with the handler."""

    # Given
    class ThingsResponse(BaseResponse):
        def list_things(self) -> str:
            return "[]"

    # When
    before, motos_before = method_names_from_class(ThingsResponse), motos_method_names(ThingsResponse)
    ThingsResponse.create_thing = lambda self: "{}"  # type: ignore[attr-defined]
    after = method_names_from_class(ThingsResponse)

    # Then
    assert before == motos_before
    assert "list_things" in before
    assert "create_thing" not in before
    assert after == motos_method_names(ThingsResponse)
    assert "create_thing" in after
