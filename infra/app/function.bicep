// The function app: Flex Consumption, Python 3.11, managed identity, identity-based storage, Entra-only telemetry.
// App settings = the host's settings below + autoprotect's settings from main.bicep (autoprotectSettings) + the
// notification webhook, a secret that arrives as its own @secure() parameter. They are written by the
// `appSettingsConfig` resource below, not through the Azure Verified Module: its `configs` parameter is not secure,
// so a secret passed there would be stored in the module's deployment history.

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

@description('autoprotect settings (name -> value). Not secure: nothing secret may be in here.')
param appSettings object

@secure()
@description('AUTOPROTECT_NOTIFY_WEBHOOK_URL (a secret). Empty: none.')
param notifyWebhookUrl string = ''

@description('Key Vault secret URI holding the webhook URL. Set: the setting is a Key Vault reference resolved by the platform with the app\'s identity (the user-assigned one when deployed). Empty: notifyWebhookUrl.')
param notifyWebhookSecretUri string = ''

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

// A Key Vault reference (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references) keeps the
// URL out of the deployment altogether; the reference itself is not a secret.
var notifySettings = {
  AUTOPROTECT_NOTIFY_WEBHOOK_URL: empty(notifyWebhookSecretUri) ? notifyWebhookUrl : '@Microsoft.KeyVault(SecretUri=${notifyWebhookSecretUri})'
}

var allSettings = union(hostSettings, useUserAssigned ? userAssignedSettings : {}, appSettings, notifySettings)

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
    // Key Vault references resolve with the identity the app runs as (default: the system-assigned one).
    keyVaultAccessIdentityResourceId: useUserAssigned ? userAssignedIdentityId : null
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
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: name
}

// Every app setting, written once per deployment (a PUT of config/appsettings replaces the whole set).
// checkov applies its site checks to every sites/config resource; this one holds name-value app settings only, and
// the site's own configuration is on the AVM module above (asserted in tests/infra/test_security.py).
resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: app settings, not the site; Event Grid calls the webhook with its system key (no App Service Authentication)
  // checkov:skip=CKV_AZURE_63: app settings, not the site; logs go to Application Insights, not HTTP logs
  // checkov:skip=CKV_AZURE_65: app settings, not the site; detailed errors are a web config setting
  // checkov:skip=CKV_AZURE_66: app settings, not the site; failed request tracing is a web config setting
  // checkov:skip=CKV_AZURE_80: app settings, not the site; the runtime is Python (functionAppConfig.runtime)
  // checkov:skip=CKV_AZURE_88: app settings, not the site; Flex Consumption deploys from blob storage, not Azure Files
  // checkov:skip=CKV_AZURE_222: app settings, not the site; Event Grid must reach the webhook over the public endpoint
  parent: app
  name: 'appsettings'
  properties: allSettings
  dependsOn: [
    site
  ]
}

output name string = site.outputs.name
output resourceId string = site.outputs.resourceId
output defaultHostname string = site.outputs.defaultHostname
output systemPrincipalId string = site.outputs.?systemAssignedMIPrincipalId ?? ''
