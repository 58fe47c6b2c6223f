"""The one error `sagepipe runs` turns into a single line on stderr and exit code 2."""


class RunsError(Exception):
    """Bad input (an unknown run, a malformed URI) or an environment that cannot answer (no stack, no
    credentials). The message is the whole explanation: one line, no traceback."""
