// The Event Grid subscription that delivers flexible server writes of one subscription to `on_resource_write`.
//
// Deployed by the azd post-deploy hook (infra/scripts/postdeploy.sh) into each system topic's resource group, after
// the code is running: Event Grid validates a webhook endpoint when the subscription is created, and only the
// deployed function can answer that handshake. tests/infra/test_event_grid.py checks the filter and the function
// name against the code (shared/events.py, functions/events.py).

@description('Name of the Microsoft.Resources.Subscriptions system topic in this resource group.')
param systemTopicName string

@description('Host name of the function app, e.g. func-abc.azurewebsites.net.')
param functionAppHostName string

@description('Name of the Event Grid trigger function.')
param functionName string = 'on_resource_write'

@secure()
@description('The app\'s eventgrid_extension system key (read by the hook; never stored in the environment).')
param eventGridSystemKey string

@description('Resource ID of the storage account holding the dead-letter container.')
param deadLetterStorageAccountId string

@description('Blob container for events that could not be delivered.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Name of the event subscription.')
param name string = 'autoprotect-flexible-server-writes'

// Retry policy, chosen deliberately:
// - 30 attempts over up to 24 hours (Event Grid's own maximum window): a Functions outage or a slow cold start
//   must not lose a server write, since a lost event leaves the server unprotected until someone submits it.
// - Redelivery is harmless: on_resource_write records each server once and enqueues idempotently.
// - After that the event is dead-lettered (and 400/413 answers are dead-lettered at once), so nothing is dropped
//   silently: the blobs in the dead-letter container name the servers to submit by hand.
var maxDeliveryAttempts = 30
var eventTimeToLiveInMinutes = 1440

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource flexibleServerWrites 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  name: name
  parent: systemTopic
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionAppHostName}/runtime/webhooks/EventGrid?functionName=${functionName}&code=${eventGridSystemKey}'
        // One event per request: each invocation answers quickly and a failure retries one event only.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    // The filter lives in filter.json so the local emulator applies the very same one (emulator/eventfilter.py).
    // StringIn compares case-insensitively, like shared/events.py; the code still checks every event.
    filter: loadJsonContent('filter.json')
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead-lettering through the topic's own identity: the storage account accepts no shared keys.
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = flexibleServerWrites.id
