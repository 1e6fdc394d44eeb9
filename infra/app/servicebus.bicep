// Service Bus (Standard: topics and duplicate detection need Standard or above), Entra-only.
// The same entities are mirrored for the local stand-in in local/bus/topology.json
// (tests/integration/test_infra.py keeps the two in step).
param name string
param location string = resourceGroup().location
param tags object = {}

param revocationsQueueName string
param modelUpdatesQueueName string
param reenrollWorkQueueName string
param hrEventsTopicName string
param hrEventsSubscriptionName string

@description('Deliveries before a message is dead-lettered (Service Bus default 10).')
param maxDeliveryCount int = 10

@description('Peek-lock duration; the Functions host renews the lock while a function runs.')
param lockDuration string = 'PT30S'

@description('Duplicate detection window (keyed on MessageId = the deterministic idempotency key).')
param duplicateDetectionWindow string = 'PT1H'

@description('Time to live of a message before it expires (and is dead-lettered).')
param messageTimeToLive string = 'P14D'

@description('Log Analytics workspace that receives the namespace\'s operational (management) logs.')
param logAnalyticsWorkspaceId string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // No SAS keys / connection strings: senders and receivers authenticate with Entra ID only.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource revocationsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: revocationsQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    requiresSession: false
  }
}

resource modelUpdatesQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: modelUpdatesQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    requiresSession: false
  }
}

resource reenrollWorkQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: reenrollWorkQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    requiresSession: false
  }
}

// The HR system publishes CloudEvents here (Azure Service Bus Data Sender on this topic only,
// see rbac.bicep `hrSystemPrincipalId`).
resource hrEventsTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: hrEventsTopicName
  properties: {
    defaultMessageTimeToLive: messageTimeToLive
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    supportOrdering: false
  }
}

resource hrEventsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: hrEventsTopic
  name: hrEventsSubscriptionName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: messageTimeToLive
    requiresSession: false
  }
}

// Management operations on the namespace and its entities (create, update, delete, role and
// network changes). Data-plane audit (RuntimeAuditLogs: who sent or received) exists only on the
// Premium tier, so a Standard namespace cannot record it; see docs/deployment.md.
resource namespaceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'servicebus-to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'OperationalLogs'
        enabled: true
      }
    ]
  }
}

output name string = namespace.name
output id string = namespace.id
// `sb-xyz.servicebus.windows.net` (no scheme, no port), taken from the endpoint so it is right in
// every Azure cloud (https://sb-xyz.servicebus.windows.net:443/ -> sb-xyz.servicebus.windows.net).
// (No string literal containing a double slash: tree-sitter-bicep 1.1.0 reads it as a comment.)
output fullyQualifiedNamespace string = split(replace(replace(namespace.properties.serviceBusEndpoint, 'https:', ''), '/', ''), ':')[0]
