"""Fixtures for the emulator tests: an `Arm` client on the shared emulator and SDK clients."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.stack import Child
from tests.emulator.helpers import Arm


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `after_traffic` read the whole session's traffic log, so they run after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("after_traffic") is not None)


@pytest.fixture(scope="session")
def arm(emulator: Child) -> Arm:
    return Arm(emulator.info)


@pytest.fixture
def sdk(emulator: Child, emulator_env: dict[str, str]) -> dict[str, Any]:
    """The official management clients, authenticated by ManagedIdentityCredential against the emulator."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.dataprotection import DataProtectionMgmtClient
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from tests.emulator.helpers import new_sub

    cred = ManagedIdentityCredential()
    sub = new_sub()
    kw: dict[str, Any] = {
        "base_url": emulator.info["arm"],
        "credential_scopes": ["https://management.azure.com/.default"],
        "retry_total": 0,
    }
    return {
        "sub": sub,
        "credential": cred,
        "resources": ResourceManagementClient(cred, sub, **kw),
        # The api-version of the vendored spec (the SDK's default, 2026-10-01, is newer than ../shared/specs),
        # so that oav, which matches operations by exact api-version, validates these exchanges too.
        "postgres": PostgreSQLManagementClient(cred, sub, api_version="2025-08-01", **kw),
        "dataprotection": DataProtectionMgmtClient(cred, sub, **kw),
        "authorization": AuthorizationManagementClient(cred, sub, **kw),
    }
