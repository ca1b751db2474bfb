// The function app: Flex Consumption, Python 3.11, managed identity, identity-based storage, Entra-only telemetry.
// App settings = the host's settings below + autoprotect's settings from main.bicep (autoprotectSettings).

@description('Name of the function app.')
param name string

param location string = resourceGroup().location
param tags object = {}

@description('Resource ID of the Flex Consumption plan.')
param planId string

@description('Storage account of the host, the jobs queue and the ledger table.')
param storageAccountName string

@description('Blob container the app package is deployed from.')
param deploymentContainerName string

@description('Application Insights connection string (not a secret: ingestion needs an Entra token).')
param appInsightsConnectionString string

@description('Resource ID of a user-assigned identity to run as. Empty: the system-assigned identity.')
param userAssignedIdentityId string = ''

@description('Client ID of that user-assigned identity. Empty: the system-assigned identity.')
param userAssignedIdentityClientId string = ''

@description('autoprotect settings (name -> value).')
param appSettings object

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Python version of the Functions worker.')
param runtimeVersion string = '3.11'

var useUserAssigned = !empty(userAssignedIdentityId)

// Identity-based host storage (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity):
// the host uses blob (leases, timer state), queue (the queue trigger) and table; shared/runtime.py reads the
// queue and table URIs (and the client ID) for the jobs queue and the ledger.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: 'https://${storageAccountName}.blob.${environment().suffixes.storage}'
  AzureWebJobsStorage__queueServiceUri: 'https://${storageAccountName}.queue.${environment().suffixes.storage}'
  AzureWebJobsStorage__tableServiceUri: 'https://${storageAccountName}.table.${environment().suffixes.storage}'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: useUserAssigned ? 'ClientId=${userAssignedIdentityClientId};Authorization=AAD' : 'Authorization=AAD'
}

// Only with a user-assigned identity: which identity the host (and shared/runtime.py) uses for storage.
var userAssignedSettings = {
  AzureWebJobsStorage__clientId: userAssignedIdentityClientId
}

var allSettings = union(hostSettings, useUserAssigned ? userAssignedSettings : {}, appSettings)

module site 'br/public:avm/res/web/site:0.16.0' = {
  name: 'site'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, {
      'azd-service-name': 'app'
    })
    serverFarmResourceId: planId
    httpsOnly: true
    managedIdentities: {
      systemAssigned: true
      userAssignedResourceIds: useUserAssigned ? array(userAssignedIdentityId) : []
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: 'https://${storageAccountName}.blob.${environment().suffixes.storage}/${deploymentContainerName}'
          authentication: {
            type: useUserAssigned ? 'UserAssignedIdentity' : 'SystemAssignedIdentity'
            userAssignedIdentityResourceId: useUserAssigned ? userAssignedIdentityId : null
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: runtimeVersion
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    basicPublishingCredentialsPolicies: [
      {
        name: 'ftp'
        allow: false
      }
      {
        name: 'scm'
        allow: false
      }
    ]
    configs: [
      {
        name: 'appsettings'
        properties: allSettings
      }
    ]
  }
}

output name string = site.outputs.name
output resourceId string = site.outputs.resourceId
output defaultHostname string = site.outputs.defaultHostname
output systemPrincipalId string = site.outputs.?systemAssignedMIPrincipalId ?? ''
