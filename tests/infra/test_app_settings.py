"""The Bicep app settings and the settings the app reads must be the same set, with the same defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.config import SETTING_NAMES, SETTINGS

from . import bicep

REPO = bicep.REPO

# Settings read by the Functions host and its extensions, not by our code. Flex Consumption takes the worker
# runtime and version from functionAppConfig.runtime (FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION are
# rejected as app settings there), so those two are deliberately absent.
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential",  # identity-based host storage
    "AzureWebJobsStorage__blobServiceUri",  # host: leases, timer state
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # Entra-authenticated ingestion (local auth is disabled)
}

# Settings whose Bicep value is computed rather than a parameter: name -> how. For the `cond ? x : default` ones
# the value the code defaults to must be what the Bicep sets in the default deployment (the false branch); the
# others have their own test below.
DERIVED = {
    "AUTOPROTECT_MANAGED_IDENTITY_CLIENT_ID": "the user-assigned identity's client ID when one is deployed",
    "AUTOPROTECT_ANY_SUBSCRIPTION": "'true' when the bool parameter anySubscription is true",
    "AUTOPROTECT_SUBSCRIPTIONS": "the resolved scope, comma-separated: subscriptionIds, or the deployment's own "
    "subscription when that is empty; never empty (test_subscriptions_setting_is_the_resolved_scope)",
    "AUTOPROTECT_NOTIFY_WEBHOOK_URL": "a secret, set in app/function.bicep from its own @secure() parameter or as a "
    "Key Vault reference (tests/infra/test_secrets.py)",
}
OWN_TEST = {"AUTOPROTECT_SUBSCRIPTIONS", "AUTOPROTECT_NOTIFY_WEBHOOK_URL"}


def runtime_storage_settings() -> set[str]:
    """The identity-based storage settings shared/runtime.py reads (`{STORAGE_SETTING}__<name>`)."""
    source = (REPO / "shared" / "runtime.py").read_text(encoding="utf-8")
    names = set(re.findall(r'\{STORAGE_SETTING\}__(\w+)"', source))
    assert names >= {"queueServiceUri", "tableServiceUri", "clientId"}, names
    return {f"AzureWebJobsStorage__{name}" for name in names}


def test_bicep_sets_exactly_what_the_app_reads() -> None:
    reserved = bicep.reserved_settings()
    expected = SETTING_NAMES | runtime_storage_settings() | HOST_SETTINGS | reserved
    actual = set(bicep.app_settings())
    assert sorted(expected - actual) == [], "settings the app reads that infra/ does not set"
    assert sorted(actual - expected) == [], "settings infra/ sets that nothing reads (reserve them explicitly)"


def test_reserved_settings_are_not_read_yet() -> None:
    reserved = bicep.reserved_settings()
    now_read = sorted(reserved & SETTING_NAMES)
    assert now_read == [], f"the code reads {now_read} now: remove them from tests/infra/reserved_settings.txt"


def test_no_connection_string_in_azure() -> None:
    # Shared-key access is disabled on the storage account: a connection string would not work and must not exist.
    assert "AzureWebJobsStorage" not in bicep.app_settings()
    assert not any(name.endswith("ConnectionString") for name in bicep.app_settings())


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda spec: spec.name)
def test_bicep_defaults_equal_code_defaults(spec) -> None:
    value = bicep.app_settings()[spec.name]
    if spec.name in OWN_TEST:
        return
    if spec.name in DERIVED:
        branches = bicep.conditional(value)
        assert branches is not None, f"{spec.name}: expected `cond ? {DERIVED[spec.name]} : default`"
        assert branches[2] == (spec.default or ""), spec.name
        return
    converted = bicep.call(value, "string")
    name = converted["value_to_convert"] if converted else value
    assert isinstance(name, str) and name in bicep.params(bicep.MAIN), f"{spec.name} must be set from a parameter"
    default = bicep.params(bicep.MAIN)[name]["default"]
    if spec.default is None:
        assert default is None, f"{spec.name} is required: parameter {name} must have no default"
    elif converted:
        assert default == json.loads(spec.default), f"{spec.name}: parameter {name} default"
    else:
        assert default == spec.default, f"{spec.name}: parameter {name} default"
    decorators = bicep.params(bicep.MAIN)[name]["decorators"]
    description = " ".join(str(d.get("argument", "")) for d in decorators)  # @secure() has no argument
    assert spec.name in description, f"parameter {name} should name {spec.name} in its @description"


def azd_parameters() -> dict[str, str]:
    document = json.loads((bicep.INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in document["parameters"].items()}


@pytest.mark.parametrize("spec", [s for s in SETTINGS if s.name not in DERIVED], ids=lambda spec: spec.name)
def test_azd_environment_overrides_each_setting(spec) -> None:
    """`azd env set AUTOPROTECT_X value` reaches the setting; unset, the code's default applies."""
    value = bicep.app_settings()[spec.name]
    converted = bicep.call(value, "string")
    name = converted["value_to_convert"] if converted else value
    mapped = azd_parameters()[name]
    if spec.default is None:
        assert mapped == f"${{{spec.name}}}"
    else:
        assert mapped == f"${{{spec.name}={spec.default}}}"


def test_subscriptions_setting_is_the_resolved_scope() -> None:
    """AUTOPROTECT_SUBSCRIPTIONS is never the raw, possibly empty, parameter: an empty allow-list is an open scope."""
    value = bicep.app_settings()["AUTOPROTECT_SUBSCRIPTIONS"]
    assert value != "subscriptionIds"
    assert bicep.call(value, "join") == {"input_array": "subscriptionIdsResolved", "delimiter": ","}
    # Resolved: the deployment's own subscription when the parameter is empty, else the list (never empty).
    resolved = bicep.conditional(bicep.variables(bicep.MAIN)["subscriptionIdsResolved"])
    assert resolved is not None
    condition, when_empty, otherwise = resolved
    assert bicep.references(condition) == {"empty", "trim", "subscriptionIds"}
    assert bicep.call(when_empty, "array") is not None
    assert "subscription" in str(when_empty) and "subscriptionId" in str(when_empty)
    assert bicep.references(otherwise) >= {"requestedSubscriptionIds"}
    # Everything that depends on the scope (topics, Reader, auto-grant, the setting) reads the same list.
    assert bicep.modules(bicep.MAIN)["subscriptionScope"]["config"]["loop_type"]["detail"]["array_name"] == (
        "subscriptionIdsResolved"
    )
    # The parameter's own words must not promise an open scope any more.
    decorators = bicep.params(bicep.MAIN)["subscriptionIds"]["decorators"]
    description = " ".join(str(d.get("argument", "")) for d in decorators)
    assert "AUTOPROTECT_SUBSCRIPTIONS" in description and "any subscription its identity can read" not in description
    assert azd_parameters()["subscriptionIds"] == "${AUTOPROTECT_SUBSCRIPTIONS=}"


def test_any_subscription_is_off_by_default_and_explicit() -> None:
    spec = bicep.params(bicep.MAIN)["anySubscription"]
    assert spec["type"] == "bool" and spec["default"] is False
    branches = bicep.conditional(bicep.app_settings()["AUTOPROTECT_ANY_SUBSCRIPTION"])
    assert branches == ("anySubscription", "true", "false")
    assert azd_parameters()["anySubscription"] == "${AUTOPROTECT_ANY_SUBSCRIPTION=false}"


def test_every_bicep_parameter_is_declared_for_azd() -> None:
    declared = set(bicep.params(bicep.MAIN))
    assert set(azd_parameters()) <= declared
    required = {name for name, spec in bicep.params(bicep.MAIN).items() if spec["default"] is None}
    assert required <= set(azd_parameters()), "azd cannot prompt for these"


def binding_settings(path: Path) -> set[str]:
    """`%Name%` settings in the functions' trigger decorators."""
    return set(re.findall(r"%(\w+)%", path.read_text(encoding="utf-8")))


def test_trigger_bindings_resolve() -> None:
    settings = set(bicep.app_settings())
    for path in sorted((REPO / "functions").glob("*.py")):
        missing = binding_settings(path) - settings
        assert missing == set(), f"{path.name} binds to unset settings {missing}"
    for function, _ in bicep.decorator_calls(REPO / "functions" / "jobs.py", "queue_trigger"):
        connection = bicep.decorator_argument(function, "queue_trigger", "connection")
        assert {f"{connection}__credential", f"{connection}__queueServiceUri"} <= settings
