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


def object_items(expression: Any, path: Path, bound: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every key an object expression can have, with its value expression: literals, variables, `union(...)` and
    both sides of `?:` (a key on both sides keeps the later one).

    `bound` gives the items of parameters (an object passed in from the calling file).
    """
    bound = bound or {}
    if isinstance(expression, str):
        if expression in bound:
            return bound[expression]
        if expression in variables(path):
            return object_items(variables(path)[expression], path, bound)
        raise AssertionError(f"{path.name}: cannot resolve object {expression!r}")
    union = call(expression, "union")
    if union is not None:
        merged: dict[str, Any] = {}
        for arg in union.values():
            if arg is not None:
                merged.update(object_items(arg, path, bound))
        return merged
    branches = conditional(expression)
    if branches is not None:
        return {**object_items(branches[1], path, bound), **object_items(branches[2], path, bound)}
    if isinstance(expression, dict):
        return dict(expression)
    raise AssertionError(f"{path.name}: not an object expression: {expression!r}")


def app_settings_resource() -> dict[str, Any]:
    """The one `Microsoft.Web/sites/config` 'appsettings' resource of function.bicep (the body of it)."""
    found = [
        body(declaration)
        for declaration in resources(FUNCTION).values()
        if declaration.get("type") == "Microsoft.Web/sites/config" and body(declaration).get("name") == "appsettings"
    ]
    assert len(found) == 1, "function.bicep writes the app settings with exactly one sites/config resource"
    return found[0]


def app_settings() -> dict[str, Any]:
    """Every app setting the function app can get: name -> value expression.

    function.bicep writes them with a `Microsoft.Web/sites/config` 'appsettings' resource (the AVM site module gets
    no `configs`: its parameters are not secure); its `appSettings` parameter is bound to main.bicep's
    `autoprotectSettings` variable. Values are in the terms of the file that sets them: main.bicep for
    autoprotectSettings, function.bicep for the host's settings and the notification webhook.
    """
    assert "configs" not in body(modules(FUNCTION)["site"])["params"], "a second writer of the app settings"
    main_binding = body(modules(MAIN)["functionApp"])["params"]["appSettings"]
    autoprotect = variables(MAIN)[main_binding]
    assert isinstance(autoprotect, dict), "autoprotectSettings must be an object literal"
    return object_items(app_settings_resource()["properties"], FUNCTION, bound={"appSettings": autoprotect})


# -- secrets ----------------------------------------------------------------------------------------------------
# ARM keeps a deployment's parameters in its history, nested deployments (modules) included, except the values of
# secure parameters. A secret therefore stays out of the history only while every module parameter it reaches,
# directly or inside an object, array, function call or interpolation, is secure too, and no output carries it.

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROOT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:$|[.\[?!(])")


def is_secure(declaration: dict[str, Any]) -> bool:
    """A parameter or output declared `@secure()`."""
    return any(decorator.get("type") == "secure" for decorator in declaration.get("decorators") or [])


def references(expression: Any) -> set[str]:
    """The identifiers an expression may refer to.

    A superset: pycep writes the literal `'x'` and the identifier `x` alike, so a literal that happens to be a name
    counts as a reference. Property names (`a.b`: only `a`) and object keys are not references.
    """
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for inner in _INTERPOLATION.findall(node):
                found.update(_IDENTIFIER.findall(inner))
            root = _ROOT.match(node)
            if root:
                found.add(root.group(1))
        elif isinstance(node, dict):
            operator = node.get("operator")
            if isinstance(operator, dict) and operator.get("type") == "property_accessor":
                walk(operator["operands"]["operand_1"])
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return found


def secret_names(path: Path) -> set[str]:
    """The file's secure parameters and every variable whose value is derived from one."""
    tainted = {name for name, spec in params(path).items() if is_secure(spec)}
    values = variables(path)
    changed = True
    while changed:
        changed = False
        for name, value in values.items():
            if name not in tainted and references(value) & tainted:
                tainted.add(name)
                changed = True
    return tainted


def module_secure_params(path: Path, declaration: dict[str, Any]) -> set[str]:
    """The secure parameters of the module a declaration calls (none known for registry modules)."""
    if declaration["type"] != "local":
        return set()
    target = (path.parent / declaration["detail"]["path"]).resolve()
    return {name for name, spec in params(target).items() if is_secure(spec)}


def secret_leaks(path: Path) -> list[str]:
    """Where a value derived from a secure parameter reaches the deployment history: a module parameter that is not
    secure (registry modules count as not secure: their parameters cannot be read here), anything else in a module
    call (name, scope, condition, loop), or an output that is not secure."""
    tainted = secret_names(path)
    leaks = []
    for name, declaration in modules(path).items():
        config = declaration["config"]
        loop = config.get("loop_type") if isinstance(config, dict) else None
        names = set(tainted)
        if loop and references(loop.get("detail", {}).get("array_name")) & tainted and loop["detail"].get("item_name"):
            names.add(loop["detail"]["item_name"])  # an item of a secret list is secret (its index is not)
        secure = module_secure_params(path, declaration)
        call_body = body(declaration)
        for param, value in (call_body.get("params") or {}).items():
            reached = sorted(references(value) & names)
            if reached and param not in secure:
                leaks.append(f"{path.name}: module {name} parameter {param} <- {', '.join(reached)}")
        rest = {key: value for key, value in call_body.items() if key != "params"}
        rest["condition"] = condition(declaration)
        reached = sorted(references(rest) & names)
        if reached:
            leaks.append(f"{path.name}: module {name} (name, scope or condition) <- {', '.join(reached)}")
    for name, output in parse(path).get("outputs", {}).items():
        reached = sorted(references(output.get("value")) & tainted)
        if reached and not is_secure(output):
            leaks.append(f"{path.name}: output {name} <- {', '.join(reached)}")
    return leaks


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
