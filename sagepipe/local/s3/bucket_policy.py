"""S3 bucket policies whose statements have a Condition are evaluated as AWS evaluates them.

The gap
    moto enforces bucket policies on object requests, but `IAMPolicyStatement.is_action_permitted` returns
    DENIED whenever a statement's Condition does not match, whatever the statement's Effect; and S3 passes
    no request context, so no condition ever matches; and its condition check only knows StringEquals,
    treating every other operator (Bool, StringLike, ArnLike...) as a match. The standard TLS-only statement
    ("Deny s3:* when aws:SecureTransport is false") therefore denies every request, and the stack's buckets
    reject all uploads with 403.

What this adapter does
    * A statement whose Condition does not match does not apply (NEUTRAL), as in AWS's policy evaluation
      logic; one whose Condition matches applies with its Effect. Conditions are checked with the operators
      sagepipe's policies use (Bool, String*, Arn*, Null, and their IfExists forms); a key the request does not
      have makes the condition false, except for IfExists and Null, as IAM specifies.
    * Bucket policies are evaluated with the request context `aws:SecureTransport = "true"`: the local
      endpoint stands in for AWS's endpoints, which clients reach over TLS. So the TLS-only statements are
      enforced as written, and would deny a request AWS would see without TLS.

How it differs from AWS
    Only the context key above is supplied; conditions on other keys (aws:SourceIp, s3:x-amz-acl, ...) never
    match locally, so their statements do not apply.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Final

from sagepipe.local.core.moto_internals import Internal, check_all, replace_attribute

ADAPTER = "s3_bucket_policy"

LOCAL_REQUEST_CONTEXT: Final = {"aws:SecureTransport": "true"}

MOTO_INTERNALS: Final = (
    Internal(
        "moto.iam.access_control:IAMPolicyStatement.is_action_permitted",
        parameters=("self", "action", "resource", "principal", "incoming_condition_values"),
        why="returns DENIED for any statement whose Condition does not match",
    ),
    Internal(
        "moto.iam.access_control:IAMPolicyStatement._check_element_matches",
        parameters=("self", "statement_element", "value"),
    ),
    Internal("moto.iam.access_control:IAMPolicyStatement.is_unknown_principal", parameters=("self", "principal")),
    Internal("moto.iam.access_control:IAMPolicyStatement._check_principal", parameters=("self", "principal")),
    Internal(
        "moto.iam.access_control:IAMPolicy.is_action_permitted",
        parameters=("self", "action", "resource", "principal", "incoming_condition_values"),
    ),
    Internal("moto.iam.access_control:PermissionResult", why="the NEUTRAL/PERMITTED/DENIED values S3 acts on"),
    Internal(
        "moto.s3.models:FakeBucket.get_permission",
        parameters=("self", "action", "resource"),
        why="S3 asks the bucket whether its policy allows or denies an object request",
    ),
)


def _values(value: Any) -> list[str]:
    return [
        str(item).lower() if isinstance(item, bool) else str(item)
        for item in (value if isinstance(value, list) else [value])
    ]


_OPERATORS: Final = {
    "Bool": lambda expected, actual: actual.lower() in (item.lower() for item in expected),
    "StringEquals": lambda expected, actual: actual in expected,
    "StringNotEquals": lambda expected, actual: actual not in expected,
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() in (item.lower() for item in expected),
    "StringLike": lambda expected, actual: any(fnmatch.fnmatchcase(actual, item) for item in expected),
    "StringNotLike": lambda expected, actual: not any(fnmatch.fnmatchcase(actual, item) for item in expected),
    "ArnEquals": lambda expected, actual: actual in expected,
    "ArnLike": lambda expected, actual: any(fnmatch.fnmatchcase(actual, item) for item in expected),
    "ArnNotLike": lambda expected, actual: not any(fnmatch.fnmatchcase(actual, item) for item in expected),
}


def condition_matches(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM condition evaluation: every operator block, every key in it, must hold."""
    for operator, keys in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        for key, expected in keys.items():
            if base == "Null":
                if (key not in context) != (_values(expected)[0].lower() == "true"):
                    return False
                continue
            if key not in context:
                if if_exists:
                    continue
                return False
            check = _OPERATORS.get(base)
            if check is None or not check(_values(expected), context[key]):
                return False
    return True


def is_action_permitted(
    self: Any,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> Any:
    """moto's statement evaluation, except that an unmatched Condition means the statement does not apply."""
    from moto.iam.access_control import PermissionResult

    element = "NotAction" if "NotAction" in self._statement else "Action"
    concerned = self._check_element_matches(element, action) != (element == "NotAction")
    if not concerned:
        return PermissionResult.NEUTRAL
    if self.is_unknown_principal(self._statement.get("Principal")):
        return PermissionResult.NEUTRAL
    if principal and not self._check_principal(principal):
        return PermissionResult.NEUTRAL
    if "Condition" in self._statement and not condition_matches(
        self._statement["Condition"], incoming_condition_values or {}
    ):
        return PermissionResult.NEUTRAL
    if self._statement.get("Resource") and not self._check_element_matches("Resource", resource):
        return PermissionResult.NEUTRAL
    return PermissionResult.PERMITTED if self._statement["Effect"] == "Allow" else PermissionResult.DENIED


def get_permission(self: Any, action: str, resource: str) -> Any:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    return IAMPolicy(self.policy.decode()).is_action_permitted(
        action, resource, incoming_condition_values=dict(LOCAL_REQUEST_CONTEXT)
    )


def install() -> None:
    check_all(ADAPTER, MOTO_INTERNALS)
    from moto.iam.access_control import IAMPolicyStatement
    from moto.s3.models import FakeBucket

    replace_attribute(IAMPolicyStatement, "is_action_permitted", is_action_permitted)
    replace_attribute(FakeBucket, "get_permission", get_permission)
