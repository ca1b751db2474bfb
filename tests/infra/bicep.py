"""Reading the Bicep under infra/ for the infrastructure tests.

pycep-parser (the parser checkov uses) turns a Bicep file into plain JSON-like data. Its values are ambiguous in
one way worth knowing: a string literal `'x'` and an identifier `x` both come out as the string "x"; interpolated
strings keep their `${...}` text; function calls are {"function": {"type": ..., "parameters": {...}}} and operators
{"operator": {"type": ..., "operands": {...}}}. The helpers below resolve identifiers against the file's own
parameters and variables, which is all these tests need.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION = INFRA / "app" / "function.bicep"
EVENT_SUBSCRIPTION = INFRA / "eventgrid" / "subscription.bicep"
RESERVED_SETTINGS = Path(__file__).resolve().parent / "reserved_settings.txt"

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def parse(path: Path) -> dict[str, Any]:
    """The parsed file (cached: every test reads the same few files)."""
    parsed: dict[str, Any] = dict(_parser().parse(file_path=path))
    return parsed


def params(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = parse(path).get("parameters", {})
    return result


def variables(path: Path) -> dict[str, Any]:
    """Variable name -> its value expression."""
    return {name: spec["value"] for name, spec in parse(path).get("variables", {}).items()}


def resources(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = parse(path).get("resources", {})
    return result


def modules(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = parse(path).get("modules", {})
    return result


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """The `{...}` of a resource or module, looped (`[for ...: {...}]`) or conditional (`if (...) {...}`) or not."""
    config: dict[str, Any] = declaration["config"]
    if "loop_type" in config or ("condition" in config and "config" in config):
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def condition(declaration: dict[str, Any]) -> Any:
    """The `if (...)` expression of a conditional resource or module (None when unconditional)."""
    return declaration["config"].get("condition")


def role_assignments() -> list[tuple[Path, str, dict[str, Any]]]:
    """Every Microsoft.Authorization/roleAssignments resource: (file, symbolic name, declaration)."""
    found = []
    for path in bicep_files():
        for name, declaration in resources(path).items():
            if declaration.get("type") == "Microsoft.Authorization/roleAssignments" and not declaration.get("existing"):
                found.append((path, name, declaration))
    return found


def call(expression: Any, function: str) -> dict[str, Any] | None:
    """The parameters of `function(...)` when the expression is that call, else None."""
    if (
        isinstance(expression, dict)
        and isinstance(expression.get("function"), dict)
        and expression["function"].get("type") == function
    ):
        parameters: dict[str, Any] = expression["function"]["parameters"]
        return parameters
    return None


def conditional(expression: Any) -> tuple[Any, Any, Any] | None:
    """(condition, true value, false value) of `a ? b : c`, else None."""
    if isinstance(expression, dict) and isinstance(expression.get("operator"), dict):
        operator = expression["operator"]
        if operator.get("type") == "conditional":
            operands = operator["operands"]
            return operands["condition"], operands["true_value"], operands["false_value"]
    return None


def object_keys(expression: Any, path: Path, bound: dict[str, set[str]] | None = None) -> set[str]:
    """Every key an object expression can have: literals, variables, `union(...)` and both sides of `?:`.

    `bound` gives the keys of parameters (an object passed in from the calling file).
    """
    bound = bound or {}
    if isinstance(expression, str):
        if expression in bound:
            return bound[expression]
        if expression in variables(path):
            return object_keys(variables(path)[expression], path, bound)
        raise AssertionError(f"{path.name}: cannot resolve object {expression!r}")
    union = call(expression, "union")
    if union is not None:
        return set().union(*(object_keys(arg, path, bound) for arg in union.values() if arg is not None))
    branches = conditional(expression)
    if branches is not None:
        return object_keys(branches[1], path, bound) | object_keys(branches[2], path, bound)
    if isinstance(expression, dict):
        return set(expression)
    raise AssertionError(f"{path.name}: not an object expression: {expression!r}")


def app_settings() -> dict[str, Any]:
    """Every app setting the function app can get: name -> value expression (host settings map to None).

    function.bicep sets `configs: [{name: 'appsettings', properties: <expr>}]` on the site; its `appSettings`
    parameter is bound to main.bicep's `autoprotectSettings` variable.
    """
    site = body(modules(FUNCTION)["site"])["params"]
    configs = site["configs"]
    assert [config["name"] for config in configs] == ["appsettings"], configs
    main_binding = body(modules(MAIN)["functionApp"])["params"]["appSettings"]
    autoprotect = variables(MAIN)[main_binding]
    assert isinstance(autoprotect, dict), "autoprotectSettings must be an object literal"
    keys = object_keys(configs[0]["properties"], FUNCTION, bound={"appSettings": set(autoprotect)})
    return {key: autoprotect.get(key) for key in keys}


def reserved_settings() -> set[str]:
    """Settings the Bicep sets ahead of the code (the fleet features), from reserved_settings.txt."""
    lines = RESERVED_SETTINGS.read_text(encoding="utf-8").splitlines()
    return {line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()}


def decorator_calls(path: Path, decorator: str) -> list[tuple[ast.FunctionDef, ast.Call]]:
    """(function, decorator call) for every function decorated with `<something>.<decorator>(...)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for item in node.decorator_list:
                if isinstance(item, ast.Call) and isinstance(item.func, ast.Attribute) and item.func.attr == decorator:
                    found.append((node, item))
    return found


def decorator_argument(function: ast.FunctionDef, decorator: str, keyword: str | None = None) -> str:
    """A string argument of one of the function's decorators (the first positional one when keyword is None)."""
    for item in function.decorator_list:
        if isinstance(item, ast.Call) and isinstance(item.func, ast.Attribute) and item.func.attr == decorator:
            value = item.args[0] if keyword is None else next(k.value for k in item.keywords if k.arg == keyword)
            assert isinstance(value, ast.Constant) and isinstance(value.value, str)
            return value.value
    raise AssertionError(f"{function.name} has no @{decorator}")
