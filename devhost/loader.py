"""Find the app's functions through the azure-functions library's own indexing, as the Python worker does.

Reading the decorators' metadata (rather than re-parsing source) keeps the dev host honest: a function the
real worker would not index, or a binding the dev host cannot drive, fails at startup with a message naming
it instead of being silently skipped.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import azure.functions as func

from devhost.settings import ConfigError, resolve

log = logging.getLogger("devhost.loader")

EVENT_GRID = "eventGridTrigger"
QUEUE = "queueTrigger"
TIMER = "timerTrigger"
HTTP = "httpTrigger"
SUPPORTED_TRIGGERS = (EVENT_GRID, QUEUE, TIMER, HTTP)
# Storage's rule: 3-63 of lower-case letters, digits and single dashes, starting and ending alphanumeric.
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: its trigger binding (settings already resolved) and the user's callable."""

    name: str
    trigger_type: str
    arg_name: str
    binding: Mapping[str, Any]
    target: Callable[..., Any]
    is_async: bool
    properties: Mapping[str, Any] = field(default_factory=dict)


def import_app(path: str) -> func.FunctionApp:
    """Import `module:attribute` (attribute defaults to `app`) and check it is a FunctionApp."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure makes every function vanish in the real host, too
        raise ConfigError(f"cannot import the app module '{module_name}': {exc!r}") from exc
    app = getattr(module, attribute or "app", None)
    if not isinstance(app, func.FunctionApp | func.decorators.function_app.FunctionRegister):
        raise ConfigError(f"'{path}' is not a FunctionApp (got {type(app).__name__})")
    return app  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value.value if isinstance(value, Enum) else value


def index_functions(app: Any, settings: Mapping[str, str]) -> list[FunctionSpec]:
    """Turn `app.get_functions()` (callable once per app object) into specs, rejecting what we cannot run."""
    specs = []
    problems = []
    for function in app.get_functions():
        name = function.get_function_name()
        bindings = [{k: _plain(v) for k, v in b.get_dict_repr().items()} for b in function.get_bindings()]
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
        # An HTTP trigger's response is its `$return` http output, which the dev host does honour.
        others = [b for b in bindings if b is not trigger and not (b.get("type") == "http" and b["name"] == "$return")]
        if trigger is None or trigger["type"] not in SUPPORTED_TRIGGERS:
            kind = trigger["type"] if trigger else "no trigger"
            problems.append(f"{name}: {kind} is not supported (supported: {', '.join(SUPPORTED_TRIGGERS)})")
            continue
        if others:
            kinds = ", ".join(str(b.get("type")) for b in others)
            problems.append(f"{name}: extra bindings ({kinds}) are not supported; use the SDKs directly")
            continue
        if function.get_settings_dict("retry_policy"):
            log.warning("%s: @app.retry is ignored by the dev host (no retry policies)", name)
        target = function.get_user_function()
        arg_name = str(trigger["name"])
        unbound = [p for p in inspect.signature(target).parameters if p != arg_name]
        if unbound:
            problems.append(f"{name}: parameters {unbound} have no binding (only the trigger is passed)")
            continue
        specs.append(
            FunctionSpec(
                name=name,
                trigger_type=trigger["type"],
                arg_name=arg_name,
                binding=trigger,
                target=target,
                is_async=inspect.iscoroutinefunction(target),
                properties=_resolve_properties(name, trigger, settings),
            )
        )
    if problems:
        raise ConfigError("the dev host cannot run this app:\n  " + "\n  ".join(problems))
    return specs


def _resolve_properties(name: str, trigger: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, Any]:
    kind = trigger["type"]
    if kind == QUEUE:
        queue_name = resolve(str(trigger["queueName"]), settings, where=f"{name}.queueName")
        if not _QUEUE_NAME.match(queue_name) or "--" in queue_name:
            raise ConfigError(f"{name}.queueName: '{queue_name}' is not a valid Azure Storage queue name")
        return {
            "queue_name": queue_name,
            "connection": str(trigger.get("connection") or "AzureWebJobsStorage"),
        }
    if kind == TIMER:
        return {
            "schedule": resolve(str(trigger["schedule"]), settings, where=f"{name}.schedule"),
            "run_on_startup": bool(trigger.get("runOnStartup")),
            "use_monitor": trigger.get("useMonitor") is not False,
        }
    if kind == HTTP:
        methods = trigger.get("methods")
        return {
            "route": str(trigger.get("route") or name),
            "methods": [str(m).upper() for m in methods] if methods else [],
        }
    return {}
