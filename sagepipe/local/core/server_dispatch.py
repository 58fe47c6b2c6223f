"""moto's server routes each request without re-reading its own package directory.

The gap
    For every request, moto's server (`DomainDispatcherApplication.get_backend_for_host`) calls
    `moto.backends.list_of_moto_modules()`, which lists moto's package directory and stats every entry, while
    holding the dispatcher's global lock. Under a storm of events (hundreds of executions, each making several
    API calls) this serialises every request behind filesystem calls: it was the largest single cost in a
    1,000-delivery storm.

What this adapter does
    Lists the modules once: the installed moto package does not change while the emulator runs.

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
)


@cache
def _modules() -> tuple[str, ...]:
    from moto import backends

    return tuple(original_attribute(backends, "list_of_moto_modules")())


def list_of_moto_modules() -> tuple[str, ...]:
    return _modules()


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto import backends

    replace_attribute(backends, "list_of_moto_modules", list_of_moto_modules)
