#!/usr/bin/env sh
# azd post-deploy hook: subscribe the deployed Event Grid trigger to each subscription's system topic.
#
# Runs after `azd deploy` (so after the code is running): Event Grid validates the webhook when the subscription is
# created, and only the deployed function answers that handshake. Idempotent: re-running updates the subscriptions.
#
# Reads from the azd environment (outputs of infra/main.bicep): AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME,
# AZURE_FUNCTION_APP_HOSTNAME, AZURE_STORAGE_ACCOUNT_ID, AUTOPROTECT_EVENT_FUNCTION, AUTOPROTECT_DEADLETTER_CONTAINER,
# AUTOPROTECT_EVENT_TOPIC_IDS (space-separated system topic resource IDs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template="$here/../eventgrid/subscription.bicep"

for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_HOSTNAME AZURE_STORAGE_ACCOUNT_ID \
    AUTOPROTECT_EVENT_FUNCTION AUTOPROTECT_DEADLETTER_CONTAINER AUTOPROTECT_EVENT_TOPIC_IDS; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $name is not set; run 'azd provision' first" >&2
    exit 1
  fi
done

# The function must be indexed (and the Event Grid extension loaded) before its system key exists.
echo "Waiting for $AUTOPROTECT_EVENT_FUNCTION and its eventgrid_extension key on $AZURE_FUNCTION_APP_NAME..."
key=""
attempt=0
while [ "$attempt" -lt 30 ]; do
  attempt=$((attempt + 1))
  if az functionapp function show -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
      --function-name "$AUTOPROTECT_EVENT_FUNCTION" --query name -o tsv >/dev/null 2>&1; then
    key=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
      --query "systemKeys.eventgrid_extension" -o tsv 2>/dev/null || true)
    if [ -n "$key" ]; then
      break
    fi
  fi
  sleep 10
done
if [ -z "$key" ]; then
  echo "postdeploy: $AUTOPROTECT_EVENT_FUNCTION or its eventgrid_extension system key did not appear in 5 minutes." >&2
  echo "Check the deployment logs, then run: azd hooks run postdeploy" >&2
  exit 1
fi

# The key goes to az through a parameters file only this user can read, never on a command line.
umask 077
params=$(mktemp)
trap 'rm -f "$params"' EXIT INT TERM

for topic in $AUTOPROTECT_EVENT_TOPIC_IDS; do
  # /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.EventGrid/systemTopics/{name}
  sub=$(echo "$topic" | cut -d/ -f3)
  group=$(echo "$topic" | cut -d/ -f5)
  topic_name=$(echo "$topic" | cut -d/ -f9)
  cat >"$params" <<EOF
{
  "\$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "systemTopicName": {"value": "$topic_name"},
    "functionAppHostName": {"value": "$AZURE_FUNCTION_APP_HOSTNAME"},
    "functionName": {"value": "$AUTOPROTECT_EVENT_FUNCTION"},
    "eventGridSystemKey": {"value": "$key"},
    "deadLetterStorageAccountId": {"value": "$AZURE_STORAGE_ACCOUNT_ID"},
    "deadLetterContainerName": {"value": "$AUTOPROTECT_DEADLETTER_CONTAINER"}
  }
}
EOF
  echo "Subscribing $AUTOPROTECT_EVENT_FUNCTION to $topic_name (subscription $sub)..."
  az deployment group create --subscription "$sub" -g "$group" -n autoprotect-event-subscription \
    --template-file "$template" --parameters "@$params" --only-show-errors -o none
done
echo "Event Grid subscriptions are in place."
