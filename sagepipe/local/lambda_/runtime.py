"""Lambda functions run in process, from functions/, with the template's environment.

The gap
    Without Docker, moto's Lambda (`LambdaSimpleBackend`) does not run any code: `invoke` echoes the
    payload back. So `lambda:invoke` in the workflow would "succeed" without the handler ever running.

What this adapter does
    Replaces `LambdaSimpleBackend.invoke`: the function's handler (module and attribute from the template's
    Handler, code from its CodeUri) runs in this process, with a Lambda context object, the runtime's
    environment variables, the function's Environment from the template, and credentials and endpoint
    pointing at the emulator. Its stdout and stderr (Powertools' JSON logs, metrics) go to
    `<state dir>/logs/lambda/<function>.log` with START/END/REPORT lines, like its CloudWatch log group.
    An exception becomes an Unhandled function error with AWS's payload (errorMessage, errorType,
    stackTrace), which the workflow sees under the exception's name; a handler that runs past the
    function's Timeout returns `Sandbox.Timedout`. While a handler runs, boto3's default session is the
    functions' own, not the emulator's (on AWS the function's runtime is a process of its own execution
    environment: Lambda developer guide, "Understand the Lambda execution environment lifecycle"), and its clients
    reach the emulator's server application in process, without a socket (sagepipe/local/core/in_process.py).

How it differs from AWS
    One process, one invocation at a time (os.environ, sys.stdout and boto3's default session are process-wide),
    no memory limit, and a timed-out handler's thread is abandoned rather than killed. Module state persists
    between invocations like a warm execution environment. `deploy()` (at provisioning) makes a function's next
    environment a new one; its cold start (the Init phase: importing the handler) runs at its first invocation,
    as on AWS, whose REPORT line then carries an Init Duration (Lambda developer guide, "Understand the Lambda
    execution environment lifecycle"). A stack's functions share one CodeUri, so a provisioning no longer
    imports nine handlers of which the next deploy forgot eight, and a run imports only the ones it invokes.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO, cast

import boto3

from sagepipe.local.core import context
from sagepipe.local.core.emulator import REGION, temporary_environment
from sagepipe.local.core.moto_internals import Internal, check_all, original_attribute, replace_attribute

ADAPTER = "lambda_runtime"

MOTO_INTERNALS: Final = (
    Internal(
        "moto.awslambda_simple.models:LambdaSimpleBackend.invoke",
        parameters=("self", "function_name", "qualifier", "body", "headers", "response_headers"),
        why="moto's no-Docker Lambda backend; its invoke only echoes the payload.",
    ),
    Internal("moto.awslambda.models:LambdaBackend.get_function", parameters=("self", "function_name_or_arn")),
    Internal("moto.awslambda.utils:get_backend", why="picks LambdaSimpleBackend when lambda.use_docker is false"),
)

_INVOCATION_LOCK = threading.Lock()
"""Not state but a guard: a handler runs with os.environ, sys.stdout and boto3's default session set for it, and
all three are process-wide."""


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template, as the in-process Lambda runtime runs it."""

    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _FunctionLog(io.TextIOBase):
    """The functions' stdout: one stream object per runtime, whose destination is the invoking function's log file.

    Powertools binds its log handler to sys.stdout when a Logger is created, and sagepipe's functions share the
    `common` package (and the service name, hence the stdlib logger): a handler created while one function
    started cold serves them all. Invocations run one at a time (_INVOCATION_LOCK), so pointing the one stream at
    the current function's file sends every line to the function that wrote it. A new runtime (or a reset) has a
    new stream: provisioning deploys every function again, and their cold starts create loggers bound to it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self._handle: TextIO | None = None

    def point_at(self, path: Path | None) -> None:
        if path != self.path:
            self._close()
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.path = path

    def write(self, text: str) -> int:
        if self.path is None:
            return len(text)
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(text)
        self._handle.flush()  # readers (tests, `sagepipe local`) see each line as it is written
        return len(text)

    def writable(self) -> bool:
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class LocalFunctions:
    """The runtime's functions (the provisioner registers each one) and the stream their output goes to."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    initialised: set[str] = field(default_factory=set)
    """The functions whose cold start (their handler's import) has run since they were last deployed."""
    log: _FunctionLog = field(default_factory=_FunctionLog)
    session: boto3.Session | None = None
    """boto3's default session while a handler runs (made on first use): its clients' requests for the emulator
    reach the server's application in process."""

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        return self.functions.get(name)

    def close(self) -> None:
        self.log.point_at(None)


def local_functions(runtime: context.RuntimeContext | None = None) -> LocalFunctions:
    return (runtime or context.current()).state(LocalFunctions)


def function_log(spec: FunctionSpec) -> _FunctionLog:
    """The functions' stream, pointed at this function's log file in the current state directory."""
    runtime = context.current()
    stream = local_functions(runtime).log
    stream.point_at(runtime.logs_dir / "lambda" / f"{spec.name}.log")
    return stream


@contextmanager
def _functions_session(runtime: context.RuntimeContext) -> Iterator[None]:
    """boto3's default session is the functions' own for the block (callers hold _INVOCATION_LOCK): the clients a
    handler makes with `boto3.client(...)` send their requests for the emulator through the in-process transport."""
    functions = local_functions(runtime)
    if functions.session is None:
        functions.session = boto3.Session()
        if runtime.transport is not None:
            runtime.transport.register(functions.session.events)
    previous = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = functions.session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


def _runtime_environment(spec: FunctionSpec, request_id: str) -> dict[str, str]:
    runtime = context.current()
    return {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{request_id}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": runtime.endpoint,
        "AWS_ACCESS_KEY_ID": "sagepipe-local",
        "AWS_SECRET_ACCESS_KEY": "sagepipe-local",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        # There is no X-Ray daemon locally; Powertools would otherwise try to send segments.
        "POWERTOOLS_TRACE_DISABLED": "true",
        **spec.environment,
    }


def _load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    root = str(spec.code_dir)
    if root not in sys.path:
        sys.path.insert(0, root)
    module_name, _, attribute = spec.handler.rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return handler


def _swap_streams(stream: io.TextIOBase) -> tuple[TextIO, TextIO]:
    previous = (sys.stdout, sys.stderr)
    sys.stdout = sys.stderr = cast(TextIO, stream)
    return previous


def _forget_modules(code_dir: Path) -> None:
    """A deployment gets new execution environments: module state (cached settings, clients) must not survive."""
    # Compared as strings: resolving the path of each of the thousands of loaded modules cost seconds per
    # provisioning. Handlers are imported through sys.path entries of code_dir as given (_load_handler), so their
    # __file__ starts with it; the resolved form covers a code_dir reached through a symbolic link.
    prefixes = tuple({f"{code_dir}{os.sep}", f"{code_dir.resolve()}{os.sep}"})
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if isinstance(location, str) and location.startswith(prefixes):
            del sys.modules[name]


def _forget_logging(spec: FunctionSpec) -> None:
    """Powertools keeps its configuration on the stdlib logger named after the service; a new execution
    environment starts without it."""
    logger = logging.getLogger(spec.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for attribute in ("init", "powertools_handler", "logger_handler"):
        if hasattr(logger, attribute):
            delattr(logger, attribute)


def deploy(spec: FunctionSpec) -> None:
    """A (re)deployed function: its next invocation gets a new execution environment, with no module state or
    logging configuration of the old one. Every function sharing its code directory loses its modules too."""
    _forget_modules(spec.code_dir)
    _forget_logging(spec)
    functions = local_functions()
    functions.initialised -= {name for name, other in functions.functions.items() if other.code_dir == spec.code_dir}
    functions.initialised.discard(spec.name)


def _cold_start(spec: FunctionSpec, request_id: str) -> tuple[float | None, bytes | None]:
    """The Init phase, when the function has not run since it was deployed: its handler imported under the
    runtime's environment. Returns its duration in ms (None when the environment is warm) and, when it failed,
    the error payload the invocation answers with (the runtime's names for import failures: see _init_error)."""
    functions = local_functions()
    if spec.name in functions.initialised:
        return None, None
    started = time.monotonic()
    try:
        with temporary_environment(_runtime_environment(spec, "init")):
            _load_handler(spec)
    except Exception as error:  # an Init failure is the invocation's error; the next invocation tries again
        return (time.monotonic() - started) * 1000, json.dumps(_init_error(spec, error, request_id)).encode()
    functions.initialised.add(spec.name)
    return (time.monotonic() - started) * 1000, None


def _init_error(spec: FunctionSpec, error: Exception, request_id: str) -> dict[str, Any]:
    """The Python runtime's payload for a handler it cannot load (aws-lambda-python-runtime-interface-client:
    awslambdaric/bootstrap.py, `_get_handler` and `make_error`; lambda_runtime_exception.py names the types). Any
    other exception the module raises is reported under its own name, as an invocation's is."""
    module, _, attribute = spec.handler.rpartition(".")
    if isinstance(error, ImportError):
        fault = ("Runtime.ImportModuleError", f"Unable to import module '{module}': {error}")
    elif isinstance(error, SyntaxError):
        fault = ("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module}': {error}")
    elif isinstance(error, AttributeError) and module in sys.modules:  # imported, but without the handler
        fault = ("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module}'")
    else:
        return _error_payload(error, request_id)
    return {"errorMessage": fault[1], "errorType": fault[0], "requestId": request_id, "stackTrace": []}


def _error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _run_handler(spec: FunctionSpec, run: Callable[[], None], request_id: str) -> tuple[bool, float]:
    """Run the invocation (`run`) under the function's environment, for at most its Timeout. Returns whether it
    timed out and how long it ran, in ms."""
    with temporary_environment(_runtime_environment(spec, request_id)):
        started = time.monotonic()
        worker = threading.Thread(target=run, name=f"lambda-{spec.name}", daemon=True)
        worker.start()
        worker.join(timeout=spec.timeout_seconds)
        return worker.is_alive(), (time.monotonic() - started) * 1000


def invoke_function(spec: FunctionSpec, payload: Any) -> tuple[bytes, str | None]:
    """Run the handler once. Returns the response payload and the function error kind (None on success)."""
    request_id = str(uuid.uuid4())
    lambda_context = LocalLambdaContext(
        function_name=spec.name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{spec.name}",
        log_stream_name=f"local/{request_id}",
        deadline=time.monotonic() + spec.timeout_seconds,
    )
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = _load_handler(spec)(payload, lambda_context)
        except BaseException as error:  # the runtime reports every exception as a function error
            outcome["error"] = error

    with _INVOCATION_LOCK, _functions_session(context.current()):
        stream = function_log(spec)
        previous = _swap_streams(stream)
        try:
            init_ms, init_error = _cold_start(spec, request_id)
            stream.write(f"START RequestId: {request_id} Version: $LATEST\n")
            timed_out, elapsed_ms = (False, 0.0) if init_error is not None else _run_handler(spec, run, request_id)
            init = "" if init_ms is None else f"\tInit Duration: {init_ms:.2f} ms"
            stream.write(f"END RequestId: {request_id}\n")
            stream.write(f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms{init}\n")
        finally:
            sys.stdout, sys.stderr = previous
    if init_error is not None:
        return init_error, "Unhandled"
    if timed_out:
        message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
        return json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}).encode(), "Unhandled"
    if "error" in outcome:
        return json.dumps(_error_payload(outcome["error"], request_id)).encode(), "Unhandled"
    try:
        return json.dumps(outcome.get("result")).encode(), None
    except (TypeError, ValueError) as error:
        marshal = {"errorMessage": f"Unable to marshal response: {error}", "errorType": "Runtime.MarshalError"}
        return json.dumps(marshal).encode(), "Unhandled"


def invoke(  # noqa: PLR0917 - moto's signature, called positionally
    self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes | str | None:
    spec = local_functions().function(function_name)
    if spec is None:
        # Not a function of the local stack (a test created it directly): keep moto's echo.
        result: bytes | str | None = original_attribute(type(self), "invoke")(
            self, function_name, qualifier, body, headers, response_headers
        )
        return result
    self.get_function(function_name, qualifier)  # raises ResourceNotFound like AWS for unknown names
    raw = body.decode() if isinstance(body, bytes) else (body or "{}")
    payload, error_kind = invoke_function(spec, json.loads(raw) if raw else {})
    if error_kind:
        response_headers["x-amz-function-error"] = error_kind
    return payload


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.awslambda_simple.models import LambdaSimpleBackend

    replace_attribute(LambdaSimpleBackend, "invoke", invoke)
