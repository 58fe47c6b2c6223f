"""CloudFormation intrinsic functions, resolved the way CloudFormation resolves them.

Used by the local provisioner (to create the stack's resources in the emulator) and by the tests that check
the template's EventBridge patterns against the sample events. Only what is resolvable without AWS is
supported; anything else is an error, never a silent pass-through.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = object()
"""AWS::NoValue: the property or list element disappears."""

_SUB_PATTERN = re.compile(r"\$\{(!?)([A-Za-z0-9_.:]+)\}")


class IntrinsicError(ValueError):
    """An intrinsic function that cannot be resolved here."""


@dataclass
class Resolver:
    """Resolves a template value against parameters, pseudo parameters and resource references."""

    template: Mapping[str, Any]
    parameters: Mapping[str, Any]
    pseudo_parameters: Mapping[str, str]
    resource_ref: Callable[[str], Any] = field(default=lambda logical_id: _unresolvable("Ref", logical_id))
    resource_attribute: Callable[[str, str], Any] = field(
        default=lambda logical_id, attribute: _unresolvable("Fn::GetAtt", f"{logical_id}.{attribute}")
    )
    _conditions: dict[str, bool] = field(default_factory=dict, init=False)

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise IntrinsicError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(definitions[name]))
        return self._conditions[name]

    def resource_enabled(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return True if condition is None else self.condition(condition)

    # ------------------------------------------------------------------ values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            resolved = [self.resolve(item) for item in value]
            return [item for item in resolved if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = self._handlers().get(key)
            if handler is not None:
                return handler(argument)
            if key.startswith("Fn::"):
                raise IntrinsicError(f"unsupported intrinsic function {key}")
        resolved_dict = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved_dict.items() if item is not NO_VALUE}

    def _handlers(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::If": self._if,
            "Fn::Equals": lambda args: self._scalar(self.resolve(args[0])) == self._scalar(self.resolve(args[1])),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::And": lambda args: all(self.resolve(item) for item in args),
            "Fn::Or": lambda args: any(self.resolve(item) for item in args),
            "Condition": self.condition,
            "Fn::Select": lambda args: self.resolve(args[1])[int(self.resolve(args[0]))],
            "Fn::Split": lambda args: str(self.resolve(args[1])).split(self.resolve(args[0])),
            "Fn::Base64": lambda arg: base64.b64encode(str(self.resolve(arg)).encode()).decode(),
            "Fn::FindInMap": self._find_in_map,
        }

    @staticmethod
    def _scalar(value: Any) -> Any:
        # CloudFormation compares parameter values as strings (Number parameters included).
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo_parameters:
            return self.pseudo_parameters[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Resources", {}):
            return self.resource_ref(name)
        raise IntrinsicError(f"Ref to unknown name {name!r}")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        if logical_id not in self.template.get("Resources", {}):
            raise IntrinsicError(f"Fn::GetAtt on unknown resource {logical_id!r}")
        return self.resource_attribute(logical_id, self.resolve(attribute))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        local = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.resource_attribute(logical_id, attribute))
            return str(self._ref(name))

        return _SUB_PATTERN.sub(replace, text)

    def _join(self, argument: Any) -> str:
        separator, items = argument
        return str(separator).join(str(item) for item in self.resolve(items))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _find_in_map(self, argument: Any) -> Any:
        map_name, first, second = (self.resolve(item) for item in argument)
        return self.template["Mappings"][map_name][first][second]


def _unresolvable(function: str, target: str) -> Any:
    raise IntrinsicError(f"{function} {target} cannot be resolved in this context")
