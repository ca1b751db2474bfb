"""A local Azure Resource Manager emulator for autoprotect's development and tests (never deployed).

It serves the slices of ARM that autoprotect calls (managed identity tokens, resource groups, PostgreSQL flexible
servers, Data Protection backup vaults/policies/instances/jobs, role assignments) with ARM's paths, status codes,
headers and JSON shapes, plus Event Grid resource events, throttling, fault injection and a traffic log. Start it
with `python -m emulator --port 0 --data-dir DIR`; see docs/EMULATOR.md.
"""
