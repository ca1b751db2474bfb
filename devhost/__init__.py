"""A small, honest stand-in for the Azure Functions host, for local runs and tests only.

`python -m devhost` imports the real `FunctionApp`, reads its triggers from the azure-functions library's own
metadata and drives them roughly as the Functions host does: Event Grid webhooks at the host's URL, queue
triggers polling Azure Storage (Azurite) with the host's retry and poison rules, NCRONTAB timers, and simple
HTTP routes. It exists so that the app can be exercised end to end without Core Tools or the .NET host.

It is not a production runtime: there is no scaling, no singleton lease across processes, no function keys,
no output bindings (beyond an HTTP function's return value), no retry policies, and a sync function that
overruns `functionTimeout` cannot be stopped. The gaps are listed in docs/DEVHOST.md. It is excluded from
deployments through .funcignore.
"""
