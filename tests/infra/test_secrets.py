"""No secret reaches the deployment history: a @secure() value only ever flows into @secure() module parameters.

ARM stores every deployment's parameters, nested deployments (modules) included, except secure ones. A secure
parameter put inside an object, an array or a string and handed to a module parameter that is not secure is stored
in clear in that module's deployment (this is how AUTOPROTECT_NOTIFY_WEBHOOK_URL used to leak, inside the
`appSettings` object). The checks here follow values through variables, function calls and interpolations.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from . import bicep


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: str(p.relative_to(bicep.INFRA)))
def test_no_secret_reaches_a_parameter_that_is_not_secure(path: Path) -> None:
    assert bicep.secret_leaks(path) == []


def test_notify_webhook_is_secure_all_the_way_down() -> None:
    main = bicep.params(bicep.MAIN)["notifyWebhookUrl"]
    assert bicep.is_secure(main) and main["default"] == ""
    binding = bicep.body(bicep.modules(bicep.MAIN)["functionApp"])["params"]
    assert binding["notifyWebhookUrl"] == "notifyWebhookUrl"
    assert binding["notifyWebhookSecretUri"] == "notifyWebhookSecretUri"
    assert "AUTOPROTECT_NOTIFY_WEBHOOK_URL" not in bicep.variables(bicep.MAIN)["autoprotectSettings"]
    assert bicep.is_secure(bicep.params(bicep.FUNCTION)["notifyWebhookUrl"])
    # Written by the sites/config resource, never handed to the AVM site module (whose parameters are not secure).
    assert "notifyWebhookUrl" in bicep.secret_names(bicep.FUNCTION)
    assert bicep.app_settings_resource()["properties"] in bicep.secret_names(bicep.FUNCTION)


def test_notify_webhook_can_be_a_key_vault_reference() -> None:
    branches = bicep.conditional(bicep.app_settings()["AUTOPROTECT_NOTIFY_WEBHOOK_URL"])
    assert branches is not None
    condition, without_key_vault, with_key_vault = branches
    assert bicep.call(condition, "empty") == {"item_to_test": "notifyWebhookSecretUri"}
    assert without_key_vault == "notifyWebhookUrl"
    assert with_key_vault == "@Microsoft.KeyVault(SecretUri=${notifyWebhookSecretUri})"
    assert bicep.params(bicep.MAIN)["notifyWebhookSecretUri"]["default"] == ""
    # The reference resolves with the identity the app runs as.
    site = bicep.body(bicep.modules(bicep.FUNCTION)["site"])["params"]
    identity = bicep.conditional(site["keyVaultAccessIdentityResourceId"])
    assert identity is not None and identity[:2] == ("useUserAssigned", "userAssignedIdentityId")
    mapped = bicep.INFRA.joinpath("main.parameters.json").read_text(encoding="utf-8")
    assert '"notifyWebhookSecretUri": {"value": "${AUTOPROTECT_NOTIFY_WEBHOOK_SECRET_URI=}"}' in mapped


# -- the checker itself, on small templates ---------------------------------------------------------------------

CALLEE = """
@secure()
param secret string = ''
param plain string = ''
param settings object = {}
param list array = []
"""


def leaks(tmp_path: Path, caller: str, callee: str = CALLEE) -> list[str]:
    (tmp_path / "callee.bicep").write_text(textwrap.dedent(callee), encoding="utf-8")
    path = tmp_path / "caller.bicep"
    path.write_text(textwrap.dedent(caller), encoding="utf-8")
    return bicep.secret_leaks(path)


HEADER = """
@secure()
param token string
param name string = 'x'
"""


def test_the_old_app_settings_pattern_is_caught(tmp_path: Path) -> None:
    """The shape of the bug: a secure parameter inside an object variable passed to a plain object parameter."""
    found = leaks(
        tmp_path,
        HEADER
        + """
        var settings = {
          PLAIN: name
          WEBHOOK: token
        }
        module app 'callee.bicep' = {
          name: 'app'
          params: {
            settings: settings
          }
        }
        """,
    )
    assert found == ["caller.bicep: module app parameter settings <- settings"]


@pytest.mark.parametrize(
    "value",
    [
        "token",
        "'https://hooks.example/${token}'",
        "string(token)",
        "toLower(trim(token))",
        "empty(name) ? '' : token",
        "derived",
        "[for x in range(0, 2): derived]",
    ],
)
def test_a_secret_in_any_expression_is_caught(tmp_path: Path, value: str) -> None:
    found = leaks(
        tmp_path,
        HEADER
        + f"""
        var derived = '${{name}}:${{token}}'
        module app 'callee.bicep' = {{
          name: 'app'
          params: {{
            plain: {value}
          }}
        }}
        """,
    )
    assert len(found) == 1 and found[0].startswith("caller.bicep: module app parameter plain <- ")


@pytest.mark.parametrize("value", ["{ inner: token }", "[ name, token ]"])
def test_a_secret_inside_an_object_or_array_is_caught(tmp_path: Path, value: str) -> None:
    parameter = "settings" if value.startswith("{") else "list"
    found = leaks(
        tmp_path,
        HEADER
        + f"""
        module app 'callee.bicep' = {{
          name: 'app'
          params: {{
            {parameter}: {value}
          }}
        }}
        """,
    )
    assert found == [f"caller.bicep: module app parameter {parameter} <- token"]


def test_secure_to_secure_is_fine_and_plain_values_are_not_flagged(tmp_path: Path) -> None:
    found = leaks(
        tmp_path,
        HEADER
        + """
        module app 'callee.bicep' = {
          name: 'app-${name}'
          params: {
            secret: 'Bearer ${token}'
            plain: name
            settings: {
              A: name
            }
          }
        }
        """,
    )
    assert found == []


def test_a_registry_module_counts_as_not_secure(tmp_path: Path) -> None:
    found = leaks(
        tmp_path,
        HEADER
        + """
        module site 'br/public:avm/res/web/site:0.16.0' = {
          name: 'site'
          params: {
            name: name
            configs: [
              {
                name: 'appsettings'
                properties: {
                  WEBHOOK: token
                }
              }
            ]
          }
        }
        """,
    )
    assert found == ["caller.bicep: module site parameter configs <- token"]


def test_a_loop_over_a_secret_and_a_secret_in_a_name_are_caught(tmp_path: Path) -> None:
    found = leaks(
        tmp_path,
        HEADER
        + """
        var parts = split(token, ',')
        module each 'callee.bicep' = [for (part, i) in parts: {
          name: 'each-${i}'
          params: {
            plain: part
          }
        }]
        module named 'callee.bicep' = {
          name: 'named-${token}'
          params: {}
        }
        """,
    )
    assert found == [
        "caller.bicep: module each parameter plain <- part",
        "caller.bicep: module named (name, scope or condition) <- token",
    ]


def test_an_output_that_is_not_secure_is_caught(tmp_path: Path) -> None:
    found = leaks(
        tmp_path,
        HEADER
        + """
        output leaked string = 'x${token}'
        @secure()
        output kept string = token
        output fine string = name
        """,
    )
    assert found == ["caller.bicep: output leaked <- token"]
