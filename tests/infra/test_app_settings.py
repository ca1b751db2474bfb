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

# Settings whose Bicep value is computed rather than a parameter: name -> why, and the value the code defaults to
# must be what the Bicep sets in the default deployment (the false branch).
DERIVED = {
    "AUTOPROTECT_MANAGED_IDENTITY_CLIENT_ID": "the user-assigned identity's client ID when one is deployed",
}


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
