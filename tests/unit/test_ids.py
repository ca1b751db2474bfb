import pytest

from shared.ids import InvalidResourceId, ServerId, VaultChildId, vault_of

SUB = "2f6ea5f6-2a3c-4b2a-9d4e-0c1b2a3d4e5f"
GOOD = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/orders-db"


def test_parses_and_normalises_mixed_casing():
    odd = GOOD.replace("resourceGroups", "resourcegroups").replace("DBforPostgreSQL", "DBForPostgreSql")
    server = ServerId.parse(odd.replace(SUB, SUB.upper()))
    assert server == ServerId.parse(GOOD)
    assert server.id == GOOD
    assert server.key == GOOD.lower()
    assert server.resource_group == "rg-data"


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (GOOD + "/databases/app", "segments"),
        (GOOD.replace(SUB, "not-a-guid"), "GUID"),
        (GOOD.replace("rg-data", ".."), ".."),
        (GOOD.replace("orders-db", "orders%2Fdb"), "%"),
        (GOOD.replace("orders-db", "ORDERS-DB;"), "server name"),
        (GOOD.replace("Microsoft.DBforPostgreSQL", "Microsoft.Sql"), "expected"),
        (GOOD.replace("flexibleServers", "servers"), "expected"),
        (GOOD.replace("orders-db", "\u043erders-db"), "non-ASCII"),  # a Cyrillic o look-alike
        (GOOD.replace("/subscriptions", "subscriptions"), "start with"),
        (GOOD.replace("rg-data", "rg data"), "' '"),
        (GOOD + "?x=1", "'?'"),
        ("", "start with"),
        (None, "string"),
        (42, "string"),
        ("/" * 600, "longer"),
    ],
)
def test_rejects_hostile_or_foreign_ids(candidate, why):
    with pytest.raises(InvalidResourceId, match=why):
        ServerId.parse(candidate)


def test_backup_instance_name_is_deterministic_and_distinct():
    a = ServerId.parse(GOOD)
    b = ServerId.parse(GOOD.replace("rg-data", "rg-other"))
    assert a.backup_instance_name() == ServerId.parse(GOOD.upper().replace(SUB.upper(), SUB)).backup_instance_name()
    assert a.backup_instance_name() != b.backup_instance_name()
    assert a.backup_instance_name().startswith("orders-db-")


def test_vault_and_policy_ids():
    vault = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.DataProtection/backupVaults/bv-1"
    policy = VaultChildId.parse_policy(vault + "/backupPolicies/pg-weekly")
    assert policy.vault_id == vault
    assert VaultChildId.parse_vault(vault).id == vault
    with pytest.raises(InvalidResourceId):
        VaultChildId.parse_vault(vault + "/backupPolicies/x")
    assert vault_of(vault + "/backupInstances/i-1") == vault
    assert vault_of(GOOD) is None
