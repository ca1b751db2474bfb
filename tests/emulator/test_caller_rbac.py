"""Opt-in caller RBAC (`caller_rbac.enabled`): ARM answers 403 AuthorizationFailed before the provider."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from scripts.stack import Child
from tests.emulator.helpers import RA_VERSION, RG_VERSION, Arm, World, new_sub, rg_path, role_body, start_special

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
BACKUP_CONTRIBUTOR = "5e467623-bb1f-42f4-a55d-6e525e11384b"
RA = "providers/Microsoft.Authorization/roleAssignments"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    child = start_special(tmp_path_factory.mktemp("rbac"), {"caller_rbac": {"enabled": True}})
    try:
        yield child
    finally:
        child.stop()


def _grant(root: Arm, sub: str, scope: str, role: str, principal: str) -> None:
    resp = root.call("PUT", f"{scope}/{RA}/{uuid.uuid4()}", role_body(sub, role, principal), RA_VERSION)
    assert resp.status_code == 201, resp.text


def test_caller_needs_a_role_and_it_must_propagate(strict: Child) -> None:
    app = Arm(strict.info)
    root = Arm(
        strict.info,
        token=app.admin("POST", "token", {"principal_id": str(uuid.uuid4()), "superuser": True}).json()["access_token"],
    )
    sub = new_sub()
    denied = app.call("PUT", rg_path(sub, "rg"), {"location": "westeurope"}, RG_VERSION)
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    assert "Microsoft.Resources/subscriptions/resourceGroups/write" in error["message"]
    assert strict.info["app_principal_id"] in error["message"]

    _grant(root, sub, f"/subscriptions/{sub}", CONTRIBUTOR, strict.info["app_principal_id"])
    assert app.call("PUT", rg_path(sub, "rg"), {"location": "westeurope"}, RG_VERSION).status_code == 403
    app.advance(600)  # propagation
    assert app.call("PUT", rg_path(sub, "rg"), {"location": "westeurope"}, RG_VERSION).status_code == 201

    # Contributor cannot write role assignments; RBAC Administrator can
    ra = f"{rg_path(sub, 'rg')}/{RA}/{uuid.uuid4()}"
    body = role_body(sub, "acdd72a7-3385-48ef-bd42-f606fba81ae7", str(uuid.uuid4()))
    assert app.call("PUT", ra, body, RA_VERSION).status_code == 403
    _grant(root, sub, f"/subscriptions/{sub}", RBAC_ADMIN, strict.info["app_principal_id"])
    app.advance(600)
    assert app.call("PUT", ra, body, RA_VERSION).status_code == 201


def test_polling_needs_operation_status_read_at_subscription_scope(strict: Child) -> None:
    app = Arm(strict.info)
    root_token = app.admin("POST", "token", {"principal_id": str(uuid.uuid4()), "superuser": True}).json()
    world = World(Arm(strict.info, token=root_token["access_token"]))
    user = str(uuid.uuid4())
    caller = Arm(strict.info, token=app.admin("POST", "token", {"principal_id": user}).json()["access_token"])
    _grant(world.arm, world.sub, rg_path(world.sub, world.rg), BACKUP_CONTRIBUTOR, user)
    app.advance(600)
    resp = caller.call(
        "POST", f"{world.vault_id}/validateForBackup", {"backupInstance": world.instance()}, "2026-06-01"
    )
    assert resp.status_code == 202, resp.text
    poll = caller.call("GET", resp.headers["Azure-AsyncOperation"])
    assert poll.status_code == 403
    assert "Microsoft.DataProtection/locations/operationStatus/read" in poll.json()["error"]["message"]
    _grant(world.arm, world.sub, f"/subscriptions/{world.sub}", BACKUP_CONTRIBUTOR, user)
    app.advance(600)
    assert caller.call("GET", resp.headers["Azure-AsyncOperation"]).status_code == 200
