"""moto's server routes each request without re-reading its own package directory or its response classes.

The gaps
    For every request, moto's server (`DomainDispatcherApplication.get_backend_for_host`) calls
    `moto.backends.list_of_moto_modules()`, which lists moto's package directory and stats every entry, while
    holding the dispatcher's global lock. Under a storm of events (hundreds of executions, each making several
    API calls) this serialises every request behind filesystem calls: it was the largest single cost in a
    1,000-delivery storm.

    Then `BaseResponse.call_action` asks `method_names_from_class` for the names of the response class's
    functions, which `inspect.getmembers` finds by walking every attribute of the class and its bases: 0.28 of
    the 2.41 ms of CPU an in-process DynamoDB GetItem took (2026-12-02).

What this adapter does
    Lists the modules once: the installed moto package does not change while the emulator runs. Keeps each
    response class's function names, found again whenever a class in its MRO gains or loses an attribute (an
    adapter that adds a handler moto lacks, installed later): the answer is the one `inspect` gives.

How it differs from AWS
    It does not: this is only about the emulator's speed.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "server_dispatch"

MOTO_INTERNALS: Final = (
    Internal("moto.backends:list_of_moto_modules", why="called for every request by the server's dispatcher"),
    Internal(
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host",
        parameters=("self", "host"),
        why="looks the host up in backends.list_of_moto_modules() (by module attribute) on each request",
    ),
    Internal(
        "moto.core.responses:method_names_from_class",
        parameters=("clazz",),
        why="BaseResponse.call_action calls it by this module's name for every request; only names are compared",
    ),
)


@cache
def _modules() -> tuple[str, ...]:
    from moto import backends

    return tuple(original_attribute(backends, "list_of_moto_modules")())


def list_of_moto_modules() -> tuple[str, ...]:
    return _modules()


@cache
def _method_names(clazz: type, attribute_counts: tuple[int, ...]) -> tuple[str, ...]:
    from moto.core import responses

    return tuple(original_attribute(responses, "method_names_from_class")(clazz))


def method_names_from_class(clazz: type) -> list[str]:
    """moto's answer, found again only when a class in `clazz`'s MRO has gained or lost an attribute."""
    return list(_method_names(clazz, tuple(len(vars(base)) for base in clazz.__mro__)))


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto import backends
    from moto.core import responses

    replace_attribute(backends, "list_of_moto_modules", list_of_moto_modules)
    replace_attribute(responses, "method_names_from_class", method_names_from_class)
