"""The clients that run inside the emulator's process reach its server's application without a socket.

The gap
    The Step Functions engine's Task clients and the in-process Lambda functions' boto3 clients live in the
    emulator's own process, yet each of their calls went out through a socket to the emulator's werkzeug server:
    urllib3 writes the request, a new server thread parses it, and urllib3 parses the answer, all in the one
    Python process and under its one GIL. In a trigger storm that round trip was a large share of each execution's
    CPU (README, "Trigger storm").

What this transport does
    A botocore `before-send` handler (botocore's Endpoint._do_get_response emits `before-send` with the prepared
    request and sends nothing when a handler returns a response; moto's own `mock_aws` answers through it:
    moto/core/botocore_stubber.py) hands the prepared, signed
    request to the same WSGI application the emulator's server runs, in the calling thread, and returns its answer
    as botocore's AWSResponse. Routing, responses, errors and moto-api's reset are the server's own; only the
    socket, the HTTP parsing and the server thread are skipped. The WSGI environment is built as werkzeug's
    request handler builds it, with moto's handler's one change (S3 metadata headers keep their underscores).
    Requests for any other endpoint pass through untouched.

The clients it serves build their User-Agent once per set of features
    botocore builds every request's User-Agent header twice from scratch (`UserAgentString.to_string`, called by
    `BaseClient._convert_to_request_dict` and again by the `request-created` handler that adds the call's feature
    ids), sanitising every character of every component with a regular expression: about a fifth of an
    in-process call's CPU (0.49 of 2.41 ms for a DynamoDB GetItem, 2026-12-02). The string depends only on the
    client's fixed settings and on the feature ids of the client and of the call (`botocore.context`), so the
    clients the transport serves keep each string they built, keyed by those feature ids, and send the same header
    botocore would (moto reads the `region/` part of it: moto/core/responses.py, `region_from_useragent_regex`).

How it differs from AWS
    It does not: the emulator answers what its server would. The answer lacks nothing botocore reads; like the
    server, the transport adds `Server` and `Date` headers.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.context import get_context
from botocore.useragent import UserAgentString

from sagepipe.local.core.moto_internals import Internal

MOTO_INTERNALS: Final = (
    Internal(
        "moto.moto_server.threaded_moto_server:ThreadedMotoServer._server_entry",
        parameters=("self",),
        why="builds the DomainDispatcherApplication the server runs and keeps the werkzeug server as self._server, "
        "whose .app the in-process transport calls",
    ),
    Internal(
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.__call__",
        parameters=("self", "environ", "start_response"),
        why="the server's WSGI application, called with the environment werkzeug's request handler would build",
    ),
    Internal(
        "moto.core.request:should_preserve_original_header_name",
        parameters=("header_name",),
        why="MotoRequestHandler keeps the underscores of these headers (S3 metadata); the transport does the same",
    ),
    Internal("moto.core.request:environ_key_for_header", parameters=("header_name",)),
    Internal("moto.core.request:PRESERVED_HEADER_NAMES_ENVIRON_KEY"),
    # botocore's, not moto's: the same check, and the same loud failure when an upgrade moves them.
    Internal(
        "botocore.useragent:UserAgentString.to_string",
        parameters=("self",),
        why="a client's `_user_agent_creator`; its string depends on the client's settings and on feature ids",
    ),
    Internal(
        "botocore.useragent:UserAgentString.with_client_config",
        parameters=("self", "client_config"),
        why="copies the creator (copy.copy): the copy must not share the memoised strings",
    ),
    Internal(
        "botocore.useragent:UserAgentString.set_client_features",
        parameters=("self", "features"),
        why="keeps the client's own feature ids as `_client_features`, part of the memoised strings' key",
    ),
    Internal("botocore.context:get_context", why="the call's feature ids (`.features`)"),
)

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SERVER_SOFTWARE: Final = "sagepipe-in-process"

log = logging.getLogger(__name__)


class _Body(io.BytesIO):
    """A response body botocore can read whole (`.stream()`) or as a StreamingBody (`.read()`)."""

    def stream(self, **_: Any) -> Iterable[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


@dataclass(frozen=True)
class InProcessTransport:
    """Answers requests for `endpoint` with the emulator server's WSGI `application`, in the calling thread."""

    endpoint: str
    application: WSGIApplication

    def attach(self, client: Any) -> Any:
        """Route `client`'s requests for the emulator through this transport; returns the client."""
        self.register(client.meta.events)
        memoise_user_agent(client)
        return client

    def register(self, events: Any) -> None:
        """Route the requests of every client made with this event emitter (a boto3 Session's `events`)."""
        events.register("before-send", self, unique_id="sagepipe-in-process-transport")
        events.register("creating-client-class", _with_memoised_user_agent, unique_id="sagepipe-memoised-user-agent")

    def serves(self, url: str) -> bool:
        return url == self.endpoint or url.startswith((f"{self.endpoint}/", f"{self.endpoint}?"))

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        """botocore's before-send handler: the server's answer, or None (send it) for another endpoint."""
        if not self.serves(request.url):
            return None
        environ = wsgi_environ(request, self.endpoint)
        status, headers, body = _call(self.application, environ)
        if request.method == "HEAD":
            body = b""  # an HTTP client reads no body after HEAD
        return AWSResponse(request.url, status, cast(Any, headers), _Body(body))  # it makes a HeadersDict of them


class MemoisedUserAgent(UserAgentString):
    """A client's User-Agent creator that builds each distinct header once (see the module's docstring)."""

    _built: dict[tuple[frozenset[str], frozenset[str]], str]
    _client_features: set[str] | None  # botocore's, set by set_client_features (not in its stubs)

    def to_string(self) -> str:
        call = get_context()
        key = (frozenset(self._client_features or ()), frozenset(call.features) if call is not None else frozenset())
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = super().to_string()
        return built

    def with_client_config(self, client_config: Any) -> MemoisedUserAgent:
        copied = super().with_client_config(client_config)
        copied._built = {}
        return copied


def memoise_user_agent(client: Any) -> None:
    """Make `client` build each distinct User-Agent header once; the headers are the ones botocore builds."""
    creator = getattr(client, "_user_agent_creator", None)
    if type(creator) is MemoisedUserAgent:
        return
    if type(creator) is not UserAgentString:
        raise RuntimeError(
            f"a botocore client's _user_agent_creator is {type(creator).__name__}, not botocore's UserAgentString; "
            "re-check sagepipe/local/core/in_process.py's memoised User-Agent against the installed botocore"
        )
    creator.__class__ = MemoisedUserAgent  # same layout: a subclass that adds one method and one attribute
    cast(MemoisedUserAgent, creator)._built = {}


class _MemoisedUserAgentClient:
    """Mixed into the client classes a registered emitter creates: each such client memoises its User-Agent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        memoise_user_agent(self)


def _with_memoised_user_agent(base_classes: list[type], **_: Any) -> None:
    """botocore's `creating-client-class` handler (the documented way to extend client classes: boto3's
    "Extensibility guide")."""
    if _MemoisedUserAgentClient not in base_classes:
        base_classes.insert(0, _MemoisedUserAgentClient)


def served_application(server: Any) -> WSGIApplication:
    """The WSGI application a started ThreadedMotoServer serves (see MOTO_INTERNALS)."""
    werkzeug_server = getattr(server, "_server", None)
    application = getattr(werkzeug_server, "app", None)
    if application is None:
        raise RuntimeError("moto's ThreadedMotoServer no longer keeps its werkzeug server (with .app) as _server")
    return cast(WSGIApplication, application)


def _request_body(request: AWSPreparedRequest) -> bytes:
    body: Any = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)


def wsgi_environ(request: AWSPreparedRequest, endpoint: str) -> dict[str, Any]:
    """The environment werkzeug's WSGIRequestHandler.make_environ and moto's MotoRequestHandler build for this
    request, as the HTTP client would have sent it (Host from the URL, the body's length)."""
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    url = urlsplit(request.url)
    server = urlsplit(endpoint)
    body = _request_body(request)
    target = url.path + (f"?{url.query}" if url.query else "")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(url.path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": url.query.encode("utf-8").decode("latin-1"),
        "REQUEST_URI": target,
        "RAW_URI": target,
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": server.hostname or "localhost",
        "SERVER_PORT": str(server.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        # http.client sends the Host of the URL; urllib3 does not add Accept-Encoding for botocore.
        "HTTP_HOST": url.netloc,
    }
    # Values as the server reads them: http.client sends str values as latin-1 and bytes as they are.
    raw_headers: list[tuple[str, Any]] = list(request.headers.items())
    headers = [
        (name, (value.decode("latin-1") if isinstance(value, bytes) else str(value)).replace("\r\n", ""))
        for name, value in raw_headers
    ]
    chunked = any(name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in headers)
    if not chunked:
        # http.client sends the length of any body it is given (and 0 for a POST or PUT without one).
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers:
        if "_" in name:  # werkzeug's handler drops these (WSGI cannot tell X_Foo from X-Foo)
            continue
        key = environ_key_for_header(name)
        repeated = key.startswith("HTTP_") and key in environ and key != "HTTP_HOST"
        environ[key] = f"{environ[key]},{value}" if repeated else value
    if chunked:
        environ["wsgi.input_terminated"] = True
    # moto's MotoRequestHandler: S3 metadata headers keep their underscores, never standing in for dashed ones.
    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in headers:
        if not should_preserve_original_header_name(name):
            continue
        key = environ_key_for_header(name)
        if key in dashed:
            continue
        names.setdefault(key, name)
        values.setdefault(key, []).append(value)
    for key, key_values in values.items():
        environ[key] = ",".join(key_values)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names
    return environ


def _call(application: WSGIApplication, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Run the WSGI application; a failure is a 500, as werkzeug's server answers (and logs) it."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started["status"], started["headers"] = status, headers
        return lambda _: None

    try:
        result = application(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()
    except Exception:  # werkzeug's server turns any exception into a 500 and logs it
        logging.getLogger("werkzeug").error("Error on request:\n%s", traceback.format_exc())
        from werkzeug.exceptions import InternalServerError

        return _call(InternalServerError(), environ)
    headers: dict[str, str] = {}
    for name, value in started["headers"]:
        # An HTTP client joins repeated headers with a comma (urllib3's HTTPHeaderDict); keys keep their case.
        found = next((key for key in headers if key.lower() == name.lower()), None)
        if found is None:
            headers[name] = value
        else:
            headers[found] = f"{headers[found]}, {value}"
    lowered = {name.lower() for name in headers}
    if "server" not in lowered:
        headers["Server"] = SERVER_SOFTWARE
    if "date" not in lowered:
        headers["Date"] = formatdate(usegmt=True)
    return int(started["status"].split(" ", 1)[0]), headers, body
