"""Lambda: the template's functions run in this process, from functions/, with the template's environment.

AWS
    Lambda runs each invocation in an execution environment of the function's runtime, with its memory,
    timeout and environment variables; a Function URL turns an HTTPS request into an invocation event.
Locally
    runtime.py replaces moto's no-Docker Lambda (which only echoes the payload): the handler runs in this
    process with a Lambda context object, the runtime's variables and credentials for the emulator, its
    output in `<state dir>/logs/lambda/`. provisioning.py creates the functions (FunctionSpec) and their URLs.
How it differs
    One invocation at a time (os.environ and sys.stdout are process-wide), no memory limit or concurrency
    throttling, and a timed-out handler's thread is abandoned, not killed.
"""

from __future__ import annotations


def install() -> None:
    from sagepipe.local.lambda_ import runtime

    runtime.install()
