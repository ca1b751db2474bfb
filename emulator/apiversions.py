"""Stable api-versions each emulated provider accepts (others get InvalidApiVersionParameter).

They run from the versions the public REST docs use up to the ones today's SDKs default to:
azure-mgmt-dataprotection 2.2.0 -> 2026-06-01, azure-mgmt-postgresqlflexibleservers 3.0.0 -> 2026-10-01,
azure-mgmt-authorization 4.0.0 -> 2022-04-01 (role assignments), azure-mgmt-resource 26.0.0 -> 2025-04-01.
"""

DATAPROTECTION = frozenset(
    {
        "2021-01-01",
        "2021-07-01",
        "2022-01-01",
        "2022-03-01",
        "2022-04-01",
        "2022-05-01",
        "2022-12-01",
        "2023-01-01",
        "2023-05-01",
        "2023-11-01",
        "2024-04-01",
        "2025-07-01",
        "2025-09-01",
        "2026-06-01",
    }
)
POSTGRESQL = frozenset(
    {"2021-06-01", "2022-01-20", "2022-12-01", "2023-06-01", "2024-08-01", "2025-08-01", "2026-10-01"}
)
AUTHORIZATION = frozenset(
    {"2015-07-01", "2018-01-01-preview", "2020-04-01-preview", "2020-10-01-preview", "2022-04-01"}
)
RESOURCES = frozenset(
    {
        "2019-10-01",
        "2020-06-01",
        "2021-01-01",
        "2021-04-01",
        "2022-09-01",
        "2023-07-01",
        "2024-03-01",
        "2024-07-01",
        "2024-11-01",
        "2025-01-01",
        "2025-03-01",
        "2025-04-01",
    }
)
# Microsoft.Resources/subscriptions (the subscriptions list has api-versions of its own).
SUBSCRIPTIONS = frozenset({"2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01"})
