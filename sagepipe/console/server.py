"""Serving the console: one threaded WSGI server on 127.0.0.1 (or a chosen host), stopped by Ctrl-C or `stop()`."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

LOOPBACK: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8765
LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]", "::1")
STOP_TIMEOUT_SECONDS: Final = 10.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_hosts(host: str) -> list[str] | None:
    """The Host headers the console answers: loopback names, and the chosen host. None (any) when it listens on
    every interface, where the names it is reached by cannot be known."""
    if host in {"0.0.0.0", "::", "[::]", ""}:  # noqa: S104 - the user asked for every interface (--host), warned
        return None
    return [*LOOPBACK_NAMES, host]


def exposure_warning(host: str, port: int) -> str | None:
    """The line printed when the console listens beyond this machine."""
    if is_loopback(host):
        return None
    return (
        f"warning: the console listens on {host}:{port}: anyone who can reach that address can read the runs "
        "(read-only, without authentication). Leave out --host to keep it on 127.0.0.1."
    )


class ConsoleServer:
    """The app on a threaded server. `url` is where it answers (the real port when 0 was asked for)."""

    def __init__(self, app: Flask, host: str = LOOPBACK, port: int = DEFAULT_PORT) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.host = host
        self.port = int(self.server.server_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = self.host if is_loopback(self.host) or self.host not in {"0.0.0.0", "::"} else LOOPBACK  # noqa: S104
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.5)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="sagepipe-console", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def serving(app: Flask, host: str = LOOPBACK, port: int = 0) -> Iterator[ConsoleServer]:
    """The console served in a background thread for the duration of the block (tests, scripts)."""
    server = ConsoleServer(app, host, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
