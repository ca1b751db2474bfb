// autoprotect on Azure Functions (Flex Consumption), deployed with `azd up`.
//
// Subscription scope, like the Azure-Samples Functions quickstarts: one resource group for the app (function app,
// plan, storage, monitoring), one small resource group per subscription in scope for its Event Grid system topic,
// and the role assignments the app's identity needs (docs/SECURITY.md explains each one).
//
// The Event Grid *subscription* is not created here: its webhook handshake needs the deployed function, so the
// azd post-deploy hook (infra/scripts/postdeploy.sh) deploys infra/eventgrid/subscription.bicep afterwards.
//
// Every app setting autoprotect reads has a parameter below with the code's default (shared/config.py SETTINGS);
// tests/infra/test_app_settings.py keeps the two in step.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to derive a unique token for resource names.')
param environmentName string

@minLength(1)
@description('Region of the function app and its resources (a region where Flex Consumption is available).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group of the app. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Resource group created in each subscription in scope for its Event Grid system topic.')
param eventsResourceGroupName string = 'rg-autoprotect-events'

@description('Object ID of the person deploying (azd sets AZURE_PRINCIPAL_ID). Gets queue and table data access for the CLI smoke test. Empty: none.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Principal type of principalId.')
param principalType string = 'User'

@description('Also create a user-assigned identity and run the app as it (storage, Application Insights, ARM). The system-assigned identity always exists.')
param useUserAssignedIdentity bool = false

@minValue(1)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of one instance.')
param instanceMemoryMB int = 2048

// ---------------------------------------------------------------------------------------------------------------
// autoprotect settings: one parameter per app setting, default = the code's default (shared/config.py)
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@description('AUTOPROTECT_DEFAULT_VAULT_ID: ARM ID of the backup vault used when no region override matches.')
param defaultVaultId string

@minLength(1)
@description('AUTOPROTECT_DEFAULT_POLICY_ID: ARM ID of a PostgreSQL flexible server policy in that vault.')
param defaultPolicyId string

@description('AUTOPROTECT_REGION_VAULTS: map region -> {vault: id, policy: id}; a region with no vault is skipped.')
param regionVaults object = {}

@description('AUTOPROTECT_OPTOUT_TAG: tag name that excludes a server.')
param optoutTag string = 'autoprotect'

@description('AUTOPROTECT_OPTOUT_VALUE: tag value that excludes a server.')
param optoutValue string = 'off'

@allowed([
  'opt-out'
  'opt-in'
])
@description('AUTOPROTECT_MODE: opt-out protects all but excluded servers; opt-in only tagged ones.')
param mode string = 'opt-out'

@description('AUTOPROTECT_OPTIN_TAG: in opt-in mode, the tag a server needs to be protected.')
param optinTag string = 'autoprotect'

@description('AUTOPROTECT_OPTIN_VALUE: in opt-in mode, the value of that tag.')
param optinValue string = 'on'

@description('AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS: comma-separated resource group name patterns never protected.')
param excludedResourceGroups string = ''

@description('AUTOPROTECT_TIER_TAG: tag whose value picks a policy from AUTOPROTECT_TIER_POLICIES.')
param tierTag string = 'backup-tier'

@description('AUTOPROTECT_TIER_POLICIES: map tier value -> policy name in the chosen vault, e.g. {gold: \'pg-gold\'}.')
param tierPolicies object = {}

@allowed([
  'true'
  'false'
])
@description('AUTOPROTECT_DRY_RUN: true records what would be done without writing to ARM.')
param dryRun string = 'false'

// A secure parameter is left out of the deployment history only while it stays secure: app/function.bicep takes it
// as its own @secure() parameter (never inside appSettings), and tests/infra/test_secrets.py checks the whole path.
@secure()
@description('AUTOPROTECT_NOTIFY_WEBHOOK_URL: https webhook told once per incident; its path is a secret. Empty: none. Ignored when notifyWebhookSecretUri is set.')
param notifyWebhookUrl string = ''

@description('Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>, no version: the newest is used) holding the webhook URL. Set: AUTOPROTECT_NOTIFY_WEBHOOK_URL becomes a Key Vault reference and the URL never passes through the deployment. The app identity needs Key Vault Secrets User on that secret (docs/DEPLOY.md). Empty: notifyWebhookUrl.')
param notifyWebhookSecretUri string = ''

@allowed([
  'json'
  'teams'
  'slack'
])
@description('AUTOPROTECT_NOTIFY_FORMAT: notification payload: json, teams or slack.')
param notifyFormat string = 'json'

@description('AUTOPROTECT_JOBS_QUEUE: storage queue of jobs (its poison queue is <name>-poison).')
param jobsQueue string = 'autoprotect-jobs'

@description('AUTOPROTECT_LEDGER_TABLE: storage table of the ledger.')
param ledgerTable string = 'autoprotect'

@description('AUTOPROTECT_POLL_SCHEDULE: NCRONTAB schedule of the poller.')
param pollSchedule string = '*/30 * * * * *'

@description('AUTOPROTECT_SWEEP_SCHEDULE: NCRONTAB schedule of the reconcile sweep.')
param sweepSchedule string = '0 0 * * * *'

@description('AUTOPROTECT_ARM_ENDPOINT: ARM origin (sovereign clouds differ).')
param armEndpoint string = 'https://management.azure.com'

@description('AUTOPROTECT_ARM_SCOPE: token scope for ARM; empty means {ARM endpoint}/.default.')
param armScope string = ''

@description('AUTOPROTECT_DATAPROTECTION_API_VERSION: api-version for Microsoft.DataProtection.')
param dataprotectionApiVersion string = '2026-06-01'

@description('AUTOPROTECT_POSTGRES_API_VERSION: api-version for Microsoft.DBforPostgreSQL.')
param postgresApiVersion string = '2025-08-01'

@description('AUTOPROTECT_PERMISSION_WAIT_MINUTES: how long to re-validate while role assignments propagate.')
param permissionWaitMinutes string = '45'

@description('AUTOPROTECT_NOT_READY_WAIT_MINUTES: how long to wait for a server to become Ready.')
param notReadyWaitMinutes string = '120'

@description('AUTOPROTECT_NOT_FOUND_WAIT_MINUTES: how long a server answering 404 is re-read before it counts as gone.')
param notFoundWaitMinutes string = '10'

@description('AUTOPROTECT_CONFIGURE_TIMEOUT_MINUTES: how long an instance may stay ConfiguringProtection.')
param configureTimeoutMinutes string = '60'

@description('AUTOPROTECT_OPERATION_TIMEOUT_MINUTES: How long an ARM operation (validate, create) may stay running before it needs attention.')
param operationTimeoutMinutes string = '120'

@description('AUTOPROTECT_RESUME_PROTECTION: true: resume a backup instance that someone stopped or suspended (unless the server is opted out).')
param resumeProtection string = 'true'

@description('AUTOPROTECT_SKIP_OVER_1TB: true: skip servers whose storage is over 1 TB (Azure Backups vaulted backups support up to 1 TB, every job fails above).')
param skipOver1Tb string = 'true'

@description('AUTOPROTECT_RETRY_SECONDS: base delay of bounded retries.')
param retrySeconds string = '60'

@description('AUTOPROTECT_WATCHDOG_MINUTES: a queued job that has not moved its server on by then is enqueued again.')
param watchdogMinutes string = '10'

@description('AUTOPROTECT_POLL_CONCURRENCY: parallel status reads per poller run.')
param pollConcurrency string = '16'

@description('AUTOPROTECT_POLL_BATCH: most outstanding items one poller run handles.')
param pollBatch string = '2000'

@description('Subscriptions in scope, comma-separated. Each gets an Event Grid system topic and Reader for the app, and the list (empty: this subscription only) is written to AUTOPROTECT_SUBSCRIPTIONS, so the app acts nowhere else unless anySubscription is true.')
param subscriptionIds string = ''

@description('AUTOPROTECT_ANY_SUBSCRIPTION: true lets the app act on servers in any subscription its identity can read (open scope), not only those in subscriptionIds. Topics and Reader are still created only for subscriptionIds.')
param anySubscription bool = false

@allowed([
  'true'
  'false'
])
@description('AUTOPROTECT_AUTO_GRANT: true lets the app give each vault\'s identity the two roles it needs on a server. Adds a Role Based Access Control Administrator assignment constrained to exactly that.')
param autoGrant string = 'false'

@description('Resource ID of an existing Resource Guard (Microsoft.DataProtection/resourceGuards), owned by a security admin, ideally in another subscription or tenant, in the vaults\' region. Set: every vault is linked to it (multi-user authorization), so deleting backup instances and other critical operations need that admin\'s approval. Empty: no guard.')
param resourceGuardId string = ''

// ---------------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
// Flex Consumption deploys the app package from this blob container.
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
// Events Event Grid could not deliver (after the retry policy) land here.
var deadLetterContainerName = 'eventgrid-deadletter'
// The Event Grid trigger's function name (functions/events.py); the post-deploy hook builds its webhook URL.
var eventFunctionName = 'on_resource_write'

var requestedSubscriptionIds = [for id in split(subscriptionIds, ','): trim(id)]
var subscriptionIdsResolved = empty(trim(subscriptionIds)) ? array(subscription().subscriptionId) : union(requestedSubscriptionIds, [])
var regionVaultIds = [for region in items(regionVaults): region.value.vault]
// union() drops duplicates: one vault role assignment per vault.
var vaultIds = union(array(defaultVaultId), regionVaultIds)
var vaultSubscriptionIdList = [for id in vaultIds: split(id, '/')[2]]
var vaultSubscriptionIds = union(vaultSubscriptionIdList, [])
var vaultSubscriptionScopes = [for id in vaultSubscriptionIds: '/subscriptions/${id}']
// Where the custom roles below may be assigned. The deployment's own subscription is listed too: a definition is
// created in it.
var customRoleScopes = union(array(subscription().id), vaultSubscriptionScopes)

// ---------------------------------------------------------------------------------------------------------------
// The app's resource group
// ---------------------------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module userIdentity 'br/public:avm/res/managed-identity/user-assigned-identity:0.4.1' = if (useUserAssignedIdentity) {
  name: 'userIdentity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

// Host storage, jobs queue and ledger table, used through identity only (no shared keys).
module storage 'br/public:avm/res/storage/storage-account:0.25.0' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    // Flex Consumption without VNet integration reaches its storage over the public endpoint.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        {
          name: deploymentContainerName
        }
        {
          name: deadLetterContainerName
        }
      ]
    }
    queueServices: {
      queues: [
        {
          name: jobsQueue
        }
        {
          name: '${jobsQueue}-poison'
        }
      ]
    }
    tableServices: {
      tables: [
        {
          name: ledgerTable
        }
      ]
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

// Entra-only ingestion: the app authenticates with its identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
module appInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'appInsights'
  scope: rg
  params: {
    name: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.1.1' = {
  name: 'plan'
  scope: rg
  params: {
    name: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    sku: {
      name: 'FC1'
      tier: 'FlexConsumption'
    }
    reserved: true
  }
}

// Every setting autoprotect reads (shared/config.py SETTINGS), plus any reserved for features still to come, but the
// notification webhook. The host's own settings (AzureWebJobsStorage__*, APPLICATIONINSIGHTS_*) and the webhook
// are added in app/function.bicep. Nothing secret may go in here: a module's object parameter is stored in the
// deployment history.
var autoprotectSettings = {
  AUTOPROTECT_DEFAULT_VAULT_ID: defaultVaultId
  AUTOPROTECT_DEFAULT_POLICY_ID: defaultPolicyId
  AUTOPROTECT_REGION_VAULTS: string(regionVaults)
  AUTOPROTECT_OPTOUT_TAG: optoutTag
  AUTOPROTECT_OPTOUT_VALUE: optoutValue
  // Always the resolved scope, never the raw (possibly empty) parameter: an empty allow-list would open the app
  // to every subscription its identity can read, which only anySubscription may do.
  AUTOPROTECT_SUBSCRIPTIONS: join(subscriptionIdsResolved, ',')
  AUTOPROTECT_ANY_SUBSCRIPTION: anySubscription ? 'true' : 'false'
  AUTOPROTECT_MODE: mode
  AUTOPROTECT_OPTIN_TAG: optinTag
  AUTOPROTECT_OPTIN_VALUE: optinValue
  AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS: excludedResourceGroups
  AUTOPROTECT_TIER_TAG: tierTag
  AUTOPROTECT_TIER_POLICIES: string(tierPolicies)
  AUTOPROTECT_DRY_RUN: dryRun
  // AUTOPROTECT_NOTIFY_WEBHOOK_URL is a secret: app/function.bicep writes it from its own @secure() parameter.
  AUTOPROTECT_NOTIFY_FORMAT: notifyFormat
  AUTOPROTECT_JOBS_QUEUE: jobsQueue
  AUTOPROTECT_LEDGER_TABLE: ledgerTable
  AUTOPROTECT_POLL_SCHEDULE: pollSchedule
  AUTOPROTECT_SWEEP_SCHEDULE: sweepSchedule
  AUTOPROTECT_AUTO_GRANT: autoGrant
  AUTOPROTECT_ARM_ENDPOINT: armEndpoint
  AUTOPROTECT_ARM_SCOPE: armScope
  AUTOPROTECT_MANAGED_IDENTITY_CLIENT_ID: useUserAssignedIdentity ? userIdentity.outputs.clientId : ''
  AUTOPROTECT_DATAPROTECTION_API_VERSION: dataprotectionApiVersion
  AUTOPROTECT_POSTGRES_API_VERSION: postgresApiVersion
  AUTOPROTECT_PERMISSION_WAIT_MINUTES: permissionWaitMinutes
  AUTOPROTECT_NOT_READY_WAIT_MINUTES: notReadyWaitMinutes
  AUTOPROTECT_NOT_FOUND_WAIT_MINUTES: notFoundWaitMinutes
  AUTOPROTECT_CONFIGURE_TIMEOUT_MINUTES: configureTimeoutMinutes
  AUTOPROTECT_OPERATION_TIMEOUT_MINUTES: operationTimeoutMinutes
  AUTOPROTECT_RESUME_PROTECTION: resumeProtection
  AUTOPROTECT_SKIP_OVER_1TB: skipOver1Tb
  AUTOPROTECT_RETRY_SECONDS: retrySeconds
  AUTOPROTECT_WATCHDOG_MINUTES: watchdogMinutes
  AUTOPROTECT_POLL_CONCURRENCY: pollConcurrency
  AUTOPROTECT_POLL_BATCH: pollBatch
  // Settings reserved for features not in the code yet go here too, listed in tests/infra/reserved_settings.txt.
}

module functionApp 'app/function.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: appInsights.outputs.connectionString
    userAssignedIdentityId: useUserAssignedIdentity ? userIdentity.outputs.resourceId : ''
    userAssignedIdentityClientId: useUserAssignedIdentity ? userIdentity.outputs.clientId : ''
    appSettings: autoprotectSettings
    notifyWebhookUrl: notifyWebhookUrl
    notifyWebhookSecretUri: notifyWebhookSecretUri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// The identity the app runs as: the user-assigned one when asked for, else the system-assigned one.
var appPrincipalId = useUserAssignedIdentity ? userIdentity.outputs.principalId : functionApp.outputs.systemPrincipalId

// ---------------------------------------------------------------------------------------------------------------
// Role assignments (docs/SECURITY.md, "Deployment grants")
// ---------------------------------------------------------------------------------------------------------------

// The app's role on each vault: exactly the Microsoft.DataProtection actions the app calls on a vault, and no
// delete (not Backup Contributor, which can delete backup instances and policies). Reading backup jobs is left out:
// only the operator CLI reads them (`report --with-backups`), with the operator's own identity.
// Action names: the Microsoft.DataProtection resource provider operations list and the Backup Contributor
// definition (Azure built-in roles); tests/infra/test_vault_role.py holds the exact list.
resource vaultRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'autoprotect-vault-backup', environmentName)
  properties: {
    roleName: 'autoprotect backup instance writer (${environmentName})'
    description: 'Read a backup vault and its policies, validate for backup, create, update, read and resume backup instances, follow vault-scoped operations. No delete, no stop.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // GET the vault (its location and identity).
          'Microsoft.DataProtection/backupVaults/read'
          // The policy a backup instance names.
          'Microsoft.DataProtection/backupVaults/backupPolicies/read'
          // POST .../validateForBackup.
          'Microsoft.DataProtection/backupVaults/validateForBackup/action'
          // List, GET and PUT backup instances.
          'Microsoft.DataProtection/backupVaults/backupInstances/read'
          'Microsoft.DataProtection/backupVaults/backupInstances/write'
          // Resume an instance someone stopped or suspended (AUTOPROTECT_RESUME_PROTECTION); never stop one.
          'Microsoft.DataProtection/backupVaults/backupInstances/resumeProtection/action'
          'Microsoft.DataProtection/backupVaults/backupInstances/resumeBackups/action'
          // Operation status and results under the vault (Azure-AsyncOperation / Location of validate and PUT).
          'Microsoft.DataProtection/backupVaults/operationStatus/read'
          'Microsoft.DataProtection/backupVaults/operationResults/read'
          'Microsoft.DataProtection/backupVaults/backupInstances/operationResults/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: customRoleScopes
  }
}

// The vault role on each vault (and, with resourceGuardId, the vault's link to the Resource Guard).
module vaultAccess 'app/vault-rbac.bicep' = [
  for (vaultId, i) in vaultIds: {
    name: 'vault-rbac-${i}'
    scope: resourceGroup(split(vaultId, '/')[2], split(vaultId, '/')[4])
    params: {
      vaultName: split(vaultId, '/')[8]
      principalId: appPrincipalId
      roleDefinitionGuid: vaultRole.name
      resourceGuardId: resourceGuardId
    }
    dependsOn: [
      vaultRole
    ]
  }
]

// Operation status at subscription scope, in every vault's subscription. Location-scoped status URLs
// (/subscriptions/{id}/providers/Microsoft.DataProtection/locations/{region}/operationStatus/{op}) sit above the vault,
// so the vault role alone does not cover them; Reader would, but only where it is granted.
resource operationStatusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'autoprotect-operation-status', environmentName)
  properties: {
    roleName: 'autoprotect operation status reader (${environmentName})'
    description: 'Read Azure Backup (Microsoft.DataProtection) operation status and results at subscription scope.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DataProtection/locations/operationStatus/read'
          'Microsoft.DataProtection/locations/operationResults/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: customRoleScopes
  }
}

module operationStatusAccess 'app/subscription-role.bicep' = [
  for (id, i) in vaultSubscriptionIds: {
    name: 'operation-status-${i}'
    scope: subscription(id)
    params: {
      principalId: appPrincipalId
      roleDefinitionGuid: operationStatusRole.name
      description: 'autoprotect: read Azure Backup operation status in this subscription'
    }
    dependsOn: [
      operationStatusRole
    ]
  }
]

var vaultPrincipalIds = [for (vaultId, v) in vaultIds: vaultAccess[v].outputs.vaultPrincipalId]

// Each subscription in scope: its Event Grid system topic, Reader for the app and, with auto-grant, the
// constrained Role Based Access Control Administrator assignment.
module subscriptionScope 'app/subscription-scope.bicep' = [
  for (id, i) in subscriptionIdsResolved: {
    name: 'subscription-scope-${i}'
    scope: subscription(id)
    params: {
      location: location
      tags: tags
      resourceGroupName: eventsResourceGroupName
      systemTopicName: '${abbrs.eventGridSystemTopics}autoprotect-${take(uniqueString(id), 8)}'
      principalId: appPrincipalId
      autoGrant: autoGrant == 'true'
      vaultPrincipalIds: vaultPrincipalIds
    }
  }
]

var topicPrincipalIds = [for (id, i) in subscriptionIdsResolved: subscriptionScope[i].outputs.topicPrincipalId]

// Storage data roles for the app (and the deployer, for the CLI smoke test), dead-letter writes for each topic,
// and Monitoring Metrics Publisher on Application Insights (Entra-authenticated telemetry).
module storageAccess 'app/storage-rbac.bicep' = {
  name: 'storage-rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: appInsights.outputs.name
    deadLetterContainerName: deadLetterContainerName
    appPrincipalId: appPrincipalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    topicPrincipalIds: topicPrincipalIds
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment; the post-deploy hook reads them)
// ---------------------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostname
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.resourceId
output AzureWebJobsStorage__queueServiceUri string = 'https://${storage.outputs.name}.queue.${environment().suffixes.storage}'
output AzureWebJobsStorage__tableServiceUri string = 'https://${storage.outputs.name}.table.${environment().suffixes.storage}'
output AUTOPROTECT_JOBS_QUEUE string = jobsQueue
output AUTOPROTECT_LEDGER_TABLE string = ledgerTable
output AUTOPROTECT_EVENT_FUNCTION string = eventFunctionName
output AUTOPROTECT_DEADLETTER_CONTAINER string = deadLetterContainerName
var topicIds = [for (id, i) in subscriptionIdsResolved: subscriptionScope[i].outputs.topicId]
output AUTOPROTECT_EVENT_TOPIC_IDS string = join(topicIds, ' ')
