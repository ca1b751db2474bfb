// One backup vault (deployed in the vault's resource group): the app's vault role (a custom role defined in
// main.bicep, with no delete action), the vault's optional link to a Resource Guard, and the vault's own identity
// (the principal the auto-grant condition allows roles to be assigned to).

@description('Name of the backup vault (Microsoft.DataProtection/backupVaults) in this resource group.')
param vaultName string

@description('Object ID of the identity the app runs as.')
param principalId string

@description('GUID (name) of the app\'s vault role: the custom role defined in main.bicep, assignable in this subscription.')
param roleDefinitionGuid string

@description('Resource ID of an existing Resource Guard to link this vault to (multi-user authorization). Empty: none.')
param resourceGuardId string = ''

resource vault 'Microsoft.DataProtection/backupVaults@2025-09-01' existing = {
  name: vaultName
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roleDefinitionGuid)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: validate, create and read backup instances in this vault (no delete)'
  }
}

// Multi-user authorization: with the vault linked to a Resource Guard, critical operations (deleting a backup
// instance, reducing retention, disabling soft delete, removing this link, ...) also need permission on the guard,
// which its owner grants only on request. A Backup vault's proxy is always named DppResourceGuardProxy. Whoever
// deploys needs Reader on the guard; the guard must be in the vault's region (docs/DEPLOY.md).
resource resourceGuardProxy 'Microsoft.DataProtection/backupVaults/backupResourceGuardProxies@2025-07-01' = if (!empty(resourceGuardId)) {
  parent: vault
  name: 'DppResourceGuardProxy'
  properties: {
    resourceGuardResourceId: resourceGuardId
  }
}

@description('Object ID of the vault\'s system-assigned identity (empty when it has none).')
output vaultPrincipalId string = vault.identity.?principalId ?? ''
