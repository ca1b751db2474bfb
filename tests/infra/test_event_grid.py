"""The Event Grid wiring (system topics, the post-deploy subscription and its hook) must match the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from emulator.eventfilter import EventFilter
from scripts.stack import EVENT_FILTER
from shared.events import WANTED

from . import bicep

REPO = bicep.REPO
HOOK = bicep.INFRA / "scripts" / "postdeploy.sh"


def event_grid_function_name() -> str:
    """The name of the function with the Event Grid trigger, read from functions/*.py."""
    names = [
        bicep.decorator_argument(function, "function_name")
        for path in sorted((REPO / "functions").glob("*.py"))
        for function, _ in bicep.decorator_calls(path, "event_grid_trigger")
    ]
    assert len(names) == 1, names
    return names[0]


def event_subscription() -> dict[str, Any]:
    declaration = bicep.resources(bicep.EVENT_SUBSCRIPTION)["flexibleServerWrites"]
    assert declaration["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    properties: dict[str, Any] = bicep.body(declaration)["properties"]
    return properties


def test_function_name_matches_the_code() -> None:
    name = event_grid_function_name()
    assert bicep.variables(bicep.MAIN)["eventFunctionName"] == name
    assert bicep.params(bicep.EVENT_SUBSCRIPTION)["functionName"]["default"] == name


def test_endpoint_is_the_event_grid_webhook_with_the_system_key() -> None:
    destination = event_subscription()["destination"]
    assert destination["endpointType"] == "WebHook"
    url = destination["properties"]["endpointUrl"]
    assert url == (
        "https://${functionAppHostName}/runtime/webhooks/EventGrid?functionName=${functionName}&code=${eventGridSystemKey}"
    )
    key = bicep.params(bicep.EVENT_SUBSCRIPTION)["eventGridSystemKey"]
    assert {"type": "secure"} in key["decorators"], "the system key must be a @secure() parameter"
    assert key["default"] is None


def test_filter_matches_the_code() -> None:
    """The deployed filter is filter.json (loadJsonContent), the same file the emulator's deliveries apply."""
    assert event_subscription()["filter"] == {
        "function": {
            "type": "load_json_content",
            "parameters": {"file_path": "filter.json", "json_path": None, "encoding": None},
        }
    }
    filter_ = json.loads(EVENT_FILTER.read_text(encoding="utf-8"))
    assert EVENT_FILTER.parent == bicep.EVENT_SUBSCRIPTION.parent
    assert {t.lower() for t in filter_["includedEventTypes"]} == set(WANTED)
    (advanced,) = filter_["advancedFilters"]
    assert advanced["key"] == "data.operationName"
    # StringIn is case-insensitive, as shared/events.py compares lower-cased.
    assert advanced["operatorType"] == "StringIn"
    assert {v.lower() for v in advanced["values"]} == set(WANTED.values())
    assert event_subscription()["eventDeliverySchema"] == "EventGridSchema"
    EventFilter.load(EVENT_FILTER)  # the emulator can apply every operator it uses


def test_retry_and_dead_letter_are_deliberate() -> None:
    properties = event_subscription()
    variables = bicep.variables(bicep.EVENT_SUBSCRIPTION)
    retry = properties["retryPolicy"]
    attempts = variables[retry["maxDeliveryAttempts"]]
    ttl = variables[retry["eventTimeToLiveInMinutes"]]
    assert 1 <= attempts <= 30 and 1 <= ttl <= 1440
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"]["type"] == "SystemAssigned"  # the storage account accepts no shared keys
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert "deadLetterDestination" not in properties
    container = bicep.params(bicep.EVENT_SUBSCRIPTION)["deadLetterContainerName"]["default"]
    assert container == bicep.variables(bicep.MAIN)["deadLetterContainerName"]
    assert properties["destination"]["properties"]["maxEventsPerBatch"] == 1


def test_system_topic_is_the_subscriptions_resource_events() -> None:
    path = bicep.INFRA / "app" / "system-topic.bicep"
    params = bicep.body(bicep.modules(path)["systemTopic"])["params"]
    assert params["topicType"] == "Microsoft.Resources.Subscriptions"
    assert params["location"] == "global"
    assert params["managedIdentities"] == {"systemAssigned": True}
    source = params["source"]["function"]
    assert (source["type"], source["property_name"]) == ("subscription", "id"), "source must be subscription().id"


def test_hook_reads_only_what_main_bicep_outputs() -> None:
    script = HOOK.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{?((?:AZURE|AUTOPROTECT)_[A-Z_]+)", script))
    outputs = set(bicep.parse(bicep.MAIN)["outputs"])
    assert used, "the hook reads the azd environment"
    assert sorted(used - outputs) == []


def test_hook_passes_the_subscription_template_its_parameters() -> None:
    script = HOOK.read_text(encoding="utf-8")
    passed = set(re.findall(r'"(\w+)": \{"value"', script))
    declared = bicep.params(bicep.EVENT_SUBSCRIPTION)
    required = {name for name, spec in declared.items() if spec["default"] is None}
    assert required <= passed <= set(declared)
    assert "eventgrid/subscription.bicep" in script
    assert "systemKeys.eventgrid_extension" in script


def test_azure_yaml_runs_the_hook_after_deploy() -> None:
    text = (REPO / "azure.yaml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\n  postdeploy:\n", text, re.MULTILINE)
    assert "run: ./infra/scripts/postdeploy.sh" in text
    assert re.search(r"^\s+host: function$", text, re.MULTILINE)
    assert re.search(r"^\s+language: python$", text, re.MULTILINE)
    assert os.access(HOOK, os.X_OK), "postdeploy.sh must be executable"


def test_hook_is_valid_posix_shell() -> None:
    done = subprocess.run(["sh", "-n", str(HOOK)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
