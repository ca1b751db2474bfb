// One subscription in scope: the Event Grid system topic that publishes its resource events, Reader for the app
// and, only with auto-grant, a Role Based Access Control Administrator assignment constrained by an ABAC condition.
targetScope = 'subscription'

param location string
param tags object = {}

@description('Resource group created in this subscription for the system topic.')
param resourceGroupName string

@description('Name of the system topic.')
param systemTopicName string

@description('Object ID of the identity the app runs as.')
param principalId string

@description('Grant the app the constrained Role Based Access Control Administrator role here.')
param autoGrant bool = false

@description('Object IDs of the vaults\' identities: the only principals the app may assign roles to.')
param vaultPrincipalIds array = []

// Reader: read flexible servers (GET server, the backupInstances list on a server), resource groups and, at
// subscription scope, Microsoft.DataProtection operation status.
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
// Role Based Access Control Administrator: role assignment write/delete (+ */read), limited by the condition below.
var rbacAdministratorRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
// The two roles a vault's identity needs on a server (docs/SECURITY.md):
// PostgreSQL Flexible Server Long Term Retention Backup Role, on the server.
var postgresLtrBackupRoleId = 'c088a766-074b-43ba-90d4-1fb21feae531'
// Reader, on the server's resource group.
var vaultReaderRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

var allowedRoles = '${postgresLtrBackupRoleId}, ${vaultReaderRoleId}'
var allowedPrincipals = join(vaultPrincipalIds, ', ')
// "Constrain roles and principals" (Azure ABAC delegation): writes may only assign the two backup roles to the
// vaults' identities, deletes may only remove such assignments. Every other role, principal or action is denied.
var autoGrantCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${allowedRoles}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {${allowedPrincipals}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${allowedRoles}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {${allowedPrincipals}}))'

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'system-topic.bicep' = {
  name: 'autoprotect-system-topic'
  scope: eventsGroup
  params: {
    name: systemTopicName
    tags: tags
  }
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, readerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: read flexible servers, their backup instances and operation status'
  }
}

resource autoGrantAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (autoGrant) {
  name: guid(subscription().id, principalId, rbacAdministratorRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect auto-grant: assign only the two Azure Backup roles, only to the vaults\' identities'
    condition: autoGrantCondition
    conditionVersion: '2.0'
  }
}

output topicId string = topic.outputs.resourceId
output topicPrincipalId string = topic.outputs.principalId
