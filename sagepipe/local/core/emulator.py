"""The embedded AWS: moto in server mode, in this process, with the local services installed.

Server mode (not moto's in-process mock) because the Step Functions engine, the AWS CLI, boto3 in another
shell and the functions all talk to the same endpoint, exactly as they would to AWS. The server runs in a
thread of this process, so the adapters (which patch moto's classes) apply to it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import requests
from botocore.config import Config

from sagepipe.local.core import context
from sagepipe.local.core.in_process import InProcessTransport, served_application

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ACCESS_KEY = "sagepipe-local"
SECRET_KEY = "sagepipe-local"  # noqa: S105 - the emulator accepts any credentials; these are not secrets

ENGINE_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    # No Docker: Lambda invocations are served by the in-process runtime (sagepipe/local/lambda_/runtime.py).
    "lambda": {"use_docker": False},
}

log = logging.getLogger(__name__)


class EmulatorError(RuntimeError):
    """The emulator could not start or was used while stopped."""


@dataclass
class Emulator:
    """moto server on localhost with the given services installed. Use as a context manager, or start()/stop().

    `install` patches moto for the local services (sagepipe.local.services.install_all); it runs once the
    runtime context exists, before the server answers its first request.
    """

    state_dir: Path
    port: int | None = None
    install: Callable[[], None] | None = None
    _server: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise EmulatorError("the emulator is not running")
        # 'localhost', not 127.0.0.1: with an IP, some clients switch S3 to virtual-host addressing and moto
        # reads the bucket name from the host.
        return f"http://localhost:{self.port}"

    def start(self) -> Emulator:
        with self._lock:
            if self._server is not None:
                return self
            from moto.server import ThreadedMotoServer

            # Absolute: builds and training jobs run in other working directories.
            self.state_dir = self.state_dir.resolve()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            # Without a port, the server binds port 0 and the kernel picks a free one: probing for a free port
            # and binding it later would race with other emulators (pytest-xdist starts one per worker). Nobody
            # knows the port before the context is set and the services are installed, so no request arrives
            # before then.
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port or 0, verbose=False)
            server.start()
            self._server = server
            self.port = int(server.get_host_and_port()[1])
            # The Step Functions engine builds its boto3 clients for http://localhost:$MOTO_PORT.
            os.environ["MOTO_PORT"] = str(self.port)
            context.set_current(
                context.RuntimeContext(
                    state_dir=self.state_dir,
                    endpoint=self.endpoint,
                    client_factory=self.client,
                    # The application the server thread runs, for the clients of this process (in_process.py).
                    transport=InProcessTransport(self.endpoint, served_application(server)),
                )
            )
            if self.install is not None:
                self.install()
            # moto's server logs every request through werkzeug, and its engine logs each state's internals;
            # sagepipe prints its own progress, so those go to <state dir>/logs/emulator.log.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._log_to_file()
            response = requests.post(f"{self.endpoint}/moto-api/config", json=ENGINE_CONFIG, timeout=10)
            if response.status_code >= 300:
                raise EmulatorError(f"moto refused the engine configuration: {response.status_code} {response.text}")
            return self

    def _log_to_file(self) -> None:
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / "emulator.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        # "sagepipe.local", not "sagepipe": that is the Powertools service logger of the in-process functions.
        for name in ("moto", "werkzeug", "sagepipe.local"):
            logger = logging.getLogger(name)
            logger.handlers = [handler]
            logger.propagate = False
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO if name != "werkzeug" else logging.ERROR)

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                runtime = context.current_or_none()
                if runtime is not None:
                    runtime.close()
                self._server.stop()
                self._server = None
            with self._clients_lock:
                self._clients.clear()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients
    def client(self, service: str) -> Any:
        """The emulator's boto3 client for `service`, one per service, shared by every caller in this process.

        Sharing is safe: boto3's low-level clients are thread safe once made (Boto3 guide, "Low-level clients",
        "Multithreading or multiprocessing with clients"); making them is not, so they are made under a lock from
        the emulator's own session. Making one costs 10-60 ms, and a test's provisioning and run asked for dozens.
        Their requests reach the server's application in process (core/in_process.py), as the engine's do.
        """
        with self._clients_lock:
            found = self._clients.get(service)
            if found is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                found = endpoint_client(self.endpoint, service, session=self._session)
                runtime = context.current_or_none()
                if runtime is not None and runtime.transport is not None:
                    runtime.transport.attach(found)
                self._clients[service] = found
            return found

    def client_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 and the AWS CLI at the emulator."""
        return client_environment(self.endpoint)

    @contextmanager
    def identifiers_seeded(self, label: str) -> Iterator[None]:
        """moto's "random" identifiers drawn in the block (a KMS key id, say) come from a seed derived from `label`,
        so the same label in a reset emulator gives the same identifiers; afterwards moto draws from fresh
        randomness again. Seeding is moto's documented way to get deterministic identifiers (moto's docs,
        Recorder, "Deterministic Identifiers": POST /moto-api/seed?a=<int> in server mode)."""
        seed = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big")
        requests.post(f"{self.endpoint}/moto-api/seed", params={"a": seed}, timeout=10)
        try:
            yield
        finally:
            requests.post(f"{self.endpoint}/moto-api/seed", params={"a": secrets.randbits(64)}, timeout=10)

    def reset(self) -> None:
        """Forget every resource (moto's reset) and every service's state (job registries, caches, armed faults,
        the clock, limits a test changed), keeping the server and the installed services."""
        context.current().reset()
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)
        requests.post(f"{self.endpoint}/moto-api/config", json=ENGINE_CONFIG, timeout=10)


CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)


def endpoint_client(
    endpoint: str, service: str, config: Config = CLIENT_CONFIG, session: boto3.session.Session | None = None
) -> Any:
    """A boto3 client for the emulator at `endpoint`, with its credentials and region (from `session`, or boto3's
    default session)."""
    factory: Any = session.client if session is not None else boto3.client  # a str service name has no overload
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def client_environment(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3 and the AWS CLI at the emulator at `endpoint`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


class EmulatorEndpoint(Protocol):
    """What drives an emulator: its endpoint, the state directory its jobs write their logs in, and clients.
    Both the emulator this process runs and one another process runs (RemoteEmulator) offer it."""

    @property
    def endpoint(self) -> str: ...
    @property
    def state_dir(self) -> Path: ...
    def client(self, service: str) -> Any: ...
    def client_environment(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class RemoteEmulator:
    """An emulator another process on this machine runs (`sagepipe local up`), reached through its endpoint
    only; its jobs' logs are files under `state_dir`, which this machine shares."""

    endpoint: str
    state_dir: Path

    def client(self, service: str) -> Any:
        return endpoint_client(self.endpoint, service)

    def client_environment(self) -> dict[str, str]:
        return client_environment(self.endpoint)


@contextmanager
def temporary_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (callers serialise: os.environ is global)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
