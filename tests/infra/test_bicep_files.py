"""Every Bicep file under infra/ parses, references pinned AVM versions and existing local modules, GA API versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from . import bicep

AVM = re.compile(r"^public:avm/(res|ptn|utl)/[a-z0-9-]+/[a-z0-9-]+:\d+\.\d+\.\d+$")
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # no -preview in a deployment template


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: str(p.relative_to(bicep.INFRA)))
def test_parses(path: Path) -> None:
    parsed = bicep.parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: str(p.relative_to(bicep.INFRA)))
def test_module_references(path: Path) -> None:
    for name, declaration in bicep.modules(path).items():
        detail = declaration["detail"]
        if declaration["type"] == "local":
            assert (path.parent / detail["path"]).is_file(), f"{path.name}:{name} -> {detail['path']}"
        else:
            reference = detail["full"]  # pycep drops the "br/" of "br/public:..."
            assert AVM.match(reference), f"{path.name}:{name}: pin an Azure Verified Module version ({reference})"
            assert f"'br/{reference}'" in path.read_text(encoding="utf-8"), "use the br/public: registry alias"


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: str(p.relative_to(bicep.INFRA)))
def test_resource_api_versions_are_ga(path: Path) -> None:
    for name, declaration in bicep.resources(path).items():
        assert API_VERSION.match(declaration["api_version"]), f"{path.name}:{name} {declaration['api_version']}"


def test_every_file_is_used() -> None:
    used = {bicep.MAIN, bicep.EVENT_SUBSCRIPTION}
    for path in bicep.bicep_files():
        for declaration in bicep.modules(path).values():
            if declaration["type"] == "local":
                used.add((path.parent / declaration["detail"]["path"]).resolve())
    assert sorted(set(bicep.bicep_files()) - used) == []


def test_azd_parameters_file_is_valid_json() -> None:
    document = json.loads((bicep.INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert document["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert document["parameters"]["location"]["value"] == "${AZURE_LOCATION}"
