"""Lambda answers GetAccountSettings, with the local account's concurrency limit.

The gap
    moto 5.2.5's Lambda has no GetAccountSettings (`GET /2016-08-19/account-settings`): no route, no handler.
    It is how `sagepipe doctor` learns the account's concurrency limit and what is left unreserved.

What this adapter does
    Adds the route to moto's Lambda URL map and a `get_account_settings` handler to its response class, which
    moto's router then dispatches to like any other Lambda action. The handler answers AWS's response shape
    (botocore's Lambda model, GetAccountSettings): ConcurrentExecutions from the local account
    (sagepipe.local.account.state, 1,000 unless a test lowers it), UnreservedConcurrentExecutions as that minus the
    reservations of the account's functions, and the code-size limits of Lambda's quotas page.

How it differs from AWS
    Only ConcurrentExecutions and the reservations are modelled: AccountUsage counts moto's functions, and the
    code-size limits are Lambda's defaults, never raised.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

from sagepipe.local.account.state import LocalAccount
from sagepipe.local.core import context
from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "lambda_account_settings"

ROUTE: Final = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"

# Lambda's defaults (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): 75 GB of code
# storage, 50 MB zipped and 250 MB unzipped deployment packages.
TOTAL_CODE_SIZE: Final = 75 * 1024**3
CODE_SIZE_ZIPPED: Final = 50 * 1024**2
CODE_SIZE_UNZIPPED: Final = 250 * 1024**2

MOTO_INTERNALS: Final = (
    Internal(
        "moto.awslambda.urls:url_paths",
        why="the Lambda URL map moto's server builds its routes from (when the first Lambda request arrives)",
    ),
    Internal(
        "moto.awslambda.responses:LambdaResponse.backend",
        why="the handler reads the account's functions from the response's backend (its account and region)",
    ),
    Internal(
        "moto.awslambda.models:LambdaBackend.list_functions",
        parameters=("self", "func_version"),
        why="each listed function's reserved_concurrency and code_size make the reservations and the usage",
    ),
)


def get_account_settings(self: Any) -> str:
    account = context.current().state(LocalAccount)
    functions = list(self.backend.list_functions())
    reserved = sum(int(function.reserved_concurrency or 0) for function in functions)
    return json.dumps(
        {
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE,
                "CodeSizeUnzipped": CODE_SIZE_UNZIPPED,
                "CodeSizeZipped": CODE_SIZE_ZIPPED,
                "ConcurrentExecutions": account.lambda_concurrent_executions,
                "UnreservedConcurrentExecutions": account.lambda_concurrent_executions - reserved,
            },
            "AccountUsage": {
                "TotalCodeSize": sum(int(function.code_size or 0) for function in functions),
                "FunctionCount": len(functions),
            },
        }
    )


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    urls = importlib.import_module("moto.awslambda.urls")
    responses = importlib.import_module("moto.awslambda.responses")
    replace_attribute(responses.LambdaResponse, "get_account_settings", get_account_settings)
    replace_attribute(urls, "url_paths", {**urls.url_paths, ROUTE: responses.LambdaResponse.dispatch})
