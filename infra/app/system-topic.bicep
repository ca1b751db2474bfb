// The Event Grid system topic of one subscription's resource events (Microsoft.Resources.Subscriptions).
// A subscription can have only one system topic for itself: see docs/DEPLOY.md if one exists already.
// Its system-assigned identity writes undeliverable events to the dead-letter container (app/storage-rbac.bicep).

@description('Name of the system topic.')
param name string

param tags object = {}

module systemTopic 'br/public:avm/res/event-grid/system-topic:0.7.0' = {
  name: 'systemTopic'
  params: {
    name: name
    // Subscription-level system topics are global.
    location: 'global'
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
    managedIdentities: {
      systemAssigned: true
    }
    tags: tags
  }
}

output resourceId string = systemTopic.outputs.resourceId
output principalId string = systemTopic.outputs.?systemAssignedMIPrincipalId ?? ''
