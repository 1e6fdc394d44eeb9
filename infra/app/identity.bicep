// The app's single user-assigned managed identity. Every data-plane access of the function app
// (host storage, photo storage, Service Bus, Face, Application Insights) and the Flex deployment
// package download uses it; roles are granted in rbac.bicep.
param name string
param location string = resourceGroup().location
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
