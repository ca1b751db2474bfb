// One role assignment at subscription scope for the app's identity.
targetScope = 'subscription'

@description('Object ID of the identity the app runs as.')
param principalId string

@description('GUID (name) of the role definition; a custom role defined in main.bicep and assignable here.')
param roleDefinitionGuid string

@description('Why the app needs it (shown on the assignment).')
param description string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: description
  }
}
