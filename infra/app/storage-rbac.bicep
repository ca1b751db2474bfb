// Data-plane roles on the app's storage account and Application Insights (deployed in the app's resource group).

@description('The app\'s storage account (host, jobs queue, ledger table, dead-letter container).')
param storageAccountName string

@description('The app\'s Application Insights component.')
param appInsightsName string

@description('Blob container Event Grid dead-letters into.')
param deadLetterContainerName string

@description('Object ID of the identity the app runs as.')
param appPrincipalId string

@description('Object ID of the person deploying (CLI smoke test). Empty: none.')
param userPrincipalId string = ''

param userPrincipalType string = 'User'

@description('Object IDs of the system topics\' identities (dead-letter writers).')
param topicPrincipalIds array = []

// Storage Blob Data Owner: the Functions host's blob use (leases, timer state, Flex deployment package).
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor: the jobs queue and its poison queue (trigger, enqueue, create).
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the ledger table.
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Storage Blob Data Contributor: Event Grid writes undeliverable events, on the dead-letter container only.
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
// Monitoring Metrics Publisher: Entra-authenticated Application Insights ingestion (local auth is disabled).
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  name: 'default'
  parent: storageAccount
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: deadLetterContainerName
  parent: blobService
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataOwnerRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: Functions host storage and deployment package'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageQueueDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: jobs queue and poison queue'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageTableDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: ledger table'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: Entra-authenticated telemetry'
  }
}

resource userQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageQueueDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: userPrincipalId
    principalType: userPrincipalType
    description: 'autoprotect CLI: submit jobs'
  }
}

resource userTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageTableDataContributorRoleId)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: userPrincipalId
    principalType: userPrincipalType
    description: 'autoprotect CLI: read the ledger (submit also records the server)'
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for topicPrincipalId in topicPrincipalIds: {
    name: guid(deadLetterContainer.id, topicPrincipalId, storageBlobDataContributorRoleId)
    scope: deadLetterContainer
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
      principalId: topicPrincipalId
      principalType: 'ServicePrincipal'
      description: 'autoprotect: Event Grid dead-letters undeliverable resource events here'
    }
  }
]
