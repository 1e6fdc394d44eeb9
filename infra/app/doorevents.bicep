// The Event Grid topic that door (access-control) systems subscribe to: CloudEvents 1.0 from the
// app's outbox (shared/services/events.py, contract docs/door-events.schema.json).
//
// Local auth (SAS keys) is disabled: only Entra tokens are accepted, and only the app's identity
// holds EventGrid Data Sender on this topic (infra/app/rbac.bicep). Door systems subscribe with
// their own event subscriptions (created by whoever runs them; EventGrid EventSubscription
// Contributor on this topic is enough for that, and is not granted here).
// https://learn.microsoft.com/azure/event-grid/authenticate-with-microsoft-entra-id
param name string
param location string = resourceGroup().location
param tags object = {}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  // A system-assigned identity: door systems' event subscriptions can then dead-letter or deliver
  // with it (deliveryWithResourceIdentity) instead of keys.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    //checkov:skip=CKV_AZURE_193:The app on Flex Consumption (no VNet integration) publishes over the public endpoint; local auth is disabled, so only Entra identities holding EventGrid Data Sender (the app's alone) can publish.
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

output name string = topic.name
output endpoint string = topic.properties.endpoint
