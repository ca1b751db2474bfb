// One backup vault (deployed in the vault's resource group): Backup Contributor for the app's identity, and the
// vault's own identity (the principal the auto-grant condition allows roles to be assigned to).

@description('Name of the backup vault (Microsoft.DataProtection/backupVaults) in this resource group.')
param vaultName string

@description('Object ID of the identity the app runs as.')
param principalId string

// Backup Contributor: validateForBackup, create/read backup instances, read policies in the vault.
var backupContributorRoleId = '5e467623-bb1f-42f4-a55d-6e525e11384b'

resource vault 'Microsoft.DataProtection/backupVaults@2025-09-01' existing = {
  name: vaultName
}

resource backupContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, backupContributorRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'autoprotect: validate and create backup instances in this vault'
  }
}

@description('Object ID of the vault\'s system-assigned identity (empty when it has none).')
output vaultPrincipalId string = vault.identity.?principalId ?? ''
