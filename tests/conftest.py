"""Session fixtures: real Azurite and the real emulator, started on free ports and stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import Child, start_azurite, start_emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = REPO_ROOT.parent / "shared" / "specs" / "specification"


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def azurite(session_dir: Path) -> Iterator[Child]:
    """A real Azurite (blob, queue, table) in memory; `azurite.info["connection_string"]` reaches it."""
    child = start_azurite(session_dir / "logs")
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture(scope="session")
def emulator(session_dir: Path) -> Iterator[Child]:
    """The emulator with the `fast` profile; `emulator.info` is its readiness banner."""
    child = start_emulator(
        session_dir / "logs",
        session_dir / "emulator-data",
        profile="fast",
        traffic_log=session_dir / "traffic.jsonl",
    )
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    """The official Azure REST specs beside the repo; tests that need them skip when they are absent."""
    if not SPECS_DIR.is_dir():
        pytest.skip(f"Azure REST specs not found at {SPECS_DIR} (they live beside the repo in ../shared/specs)")
    return SPECS_DIR


@pytest.fixture
def emulator_env(emulator: Child, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points azure-identity and requests at the emulator, as in a Function App."""
    env = {
        "IDENTITY_ENDPOINT": emulator.info["identity_endpoint"],
        "IDENTITY_HEADER": emulator.info["identity_header"],
        "REQUESTS_CA_BUNDLE": emulator.info["ca_bundle"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    os.environ.pop("MSI_ENDPOINT", None)
    return env
