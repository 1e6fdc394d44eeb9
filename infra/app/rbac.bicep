// Role assignments, least privilege: each one is scoped to the narrowest resource that works
// (account, container, queue, topic) through an `existing` reference, and named
// guid(scope id, principal id, role definition id) so re-deployments are idempotent.
//
// The app identity gets data roles only, but two of them carry one control-plane action each,
// which the app needs: Storage Blob Data Contributor includes generateUserDelegationKey/action
// (to sign the upload SAS), and Cognitive Services User includes
// Microsoft.CognitiveServices/accounts/listkeys/action. The Face account has local auth disabled
// (disableLocalAuth, policy CKV2_FACEENR_2), so listed keys cannot call it. No Owner,
// Contributor or other management role is assigned anywhere.
// The deploying user gets nothing here: it needs no access to biometric data.
param appPrincipalId string
param hostStorageAccountName string
param photoStorageAccountName string
param deadLetterContainerName string
param serviceBusNamespaceName string
param revocationsQueueName string
param modelUpdatesQueueName string
param reenrollWorkQueueName string
param hrEventsTopicName string
param hrEventsSubscriptionName string
param faceAccountName string
param applicationInsightsName string
param systemTopicPrincipalId string
param doorEventsTopicName string

@description('Optional object id of the HR system identity; empty = no assignment.')
param hrSystemPrincipalId string = ''

// Built-in role definition ids (same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  cognitiveServicesUser: 'a97b65f3-24c7-4388-baec-2e87135dc908'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: hostStorageAccountName
}

resource photoStorage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: photoStorageAccountName
}

resource photoBlobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' existing = {
  parent: photoStorage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' existing = {
  parent: photoBlobService
  name: deadLetterContainerName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource revocationsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: revocationsQueueName
}

resource modelUpdatesQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: modelUpdatesQueueName
}

resource reenrollWorkQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: reenrollWorkQueueName
}

resource hrEventsTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: serviceBus
  name: hrEventsTopicName
}

resource hrEventsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: hrEventsTopic
  name: hrEventsSubscriptionName
}

resource face 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: faceAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// ---------------------------------------------------------------------------------------------
// Host storage (AzureWebJobsStorage + Flex deployment package)
// ---------------------------------------------------------------------------------------------

// Storage Blob Data Owner: what the Functions host documents for an identity-based
// AzureWebJobsStorage (leases, host keys, blob-trigger receipts) and for reading the Flex
// deployment package.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// Storage Queue Data Contributor: the host's internal queues (blob-trigger bookkeeping).
resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Storage Table Data Contributor: host table storage (AzureWebJobsStorage__tableServiceUri).
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// ---------------------------------------------------------------------------------------------
// Photo storage (PhotoStorage connection: uploads, kept photos, consent/mapping tables)
// ---------------------------------------------------------------------------------------------

// Storage Blob Data Contributor (not Owner): the app reads, writes and deletes photos. Owner adds
// only POSIX ACL / ownership management, meaningless on this flat-namespace account, so
// Contributor is the least privilege. The Event Grid-sourced blob trigger reads the blob with it.
// It also signs the upload SAS: Storage Blob Data Contributor includes the control-plane action
// Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action (Get User
// Delegation Key), so no separate Storage Blob Delegator assignment is needed at account scope
// (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
// #storage-blob-data-contributor; .../rest/api/storageservices/create-user-delegation-sas).
resource photoBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(photoStorage.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: photoStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// Storage Queue Data Contributor: the blob trigger's poison-blob queue lives in the trigger
// connection's account (PhotoStorage__queueServiceUri).
resource photoQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(photoStorage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: photoStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Storage Table Data Contributor: consent, mapping and audit tables (TABLE_PREFIX*), which the
// app creates if missing.
resource photoTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(photoStorage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: photoStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// EventGrid Data Sender on the door-events topic only: events_sender publishes the outbox with the
// app's identity (the topic accepts no keys). Nobody else can publish to it.
resource doorEventsTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: doorEventsTopicName
}

resource doorEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(doorEventsTopic.id, appPrincipalId, roles.eventGridDataSender)
  scope: doorEventsTopic
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
  }
}

// Storage Blob Data Contributor for the Event Grid system topic's identity, on the dead-letter
// container only (deadLetterWithResourceIdentity in scripts/post-deploy.sh).
resource systemTopicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopicPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// ---------------------------------------------------------------------------------------------
// Service Bus: per entity, never namespace-wide
// ---------------------------------------------------------------------------------------------

// Azure Service Bus Data Sender on `revocations` (the API queues revocation commands).
resource revocationsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(revocationsQueue.id, appPrincipalId, roles.serviceBusDataSender)
  scope: revocationsQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

// Azure Service Bus Data Receiver on `revocations` (the revoke function's trigger).
resource revocationsReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(revocationsQueue.id, appPrincipalId, roles.serviceBusDataReceiver)
  scope: revocationsQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Azure Service Bus Data Sender on `model-updates` (the API starts a re-enrollment).
resource modelUpdatesSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelUpdatesQueue.id, appPrincipalId, roles.serviceBusDataSender)
  scope: modelUpdatesQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

// Azure Service Bus Data Receiver on `model-updates` (the reenroll function's trigger).
resource modelUpdatesReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(modelUpdatesQueue.id, appPrincipalId, roles.serviceBusDataReceiver)
  scope: modelUpdatesQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Azure Service Bus Data Sender on `reenroll-work` (re-enrollment fans out work items).
resource reenrollWorkSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reenrollWorkQueue.id, appPrincipalId, roles.serviceBusDataSender)
  scope: reenrollWorkQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

// Azure Service Bus Data Receiver on `reenroll-work` (the work-item trigger).
resource reenrollWorkReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reenrollWorkQueue.id, appPrincipalId, roles.serviceBusDataReceiver)
  scope: reenrollWorkQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Azure Service Bus Data Receiver on the `face-enrollment` SUBSCRIPTION of `hr-events` (the
// revoke function's HR trigger), not on the topic: a topic-scoped receiver could read every
// other consumer's subscription of the HR feed too. Service Bus roles can be assigned at queue,
// topic or topic-subscription scope (learn.microsoft.com/azure/service-bus-messaging/
// service-bus-managed-service-identity, "Assign a role using Azure CLI"). The app never sends here.
resource hrEventsReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hrEventsSubscription.id, appPrincipalId, roles.serviceBusDataReceiver)
  scope: hrEventsSubscription
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Azure Service Bus Data Sender on `hr-events` ONLY, for the HR system (optional parameter).
resource hrSystemSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(hrSystemPrincipalId)) {
  name: guid(hrEventsTopic.id, hrSystemPrincipalId, roles.serviceBusDataSender)
  scope: hrEventsTopic
  properties: {
    principalId: hrSystemPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

// ---------------------------------------------------------------------------------------------
// Face and monitoring
// ---------------------------------------------------------------------------------------------

// Cognitive Services User on the Face account: data-plane calls with an Entra token. The role
// also includes listkeys/action (a control-plane action); with disableLocalAuth the keys it could
// list are not accepted by the account, so it grants no key-based access. There is no narrower
// built-in role for Face data calls.
resource faceUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(face.id, appPrincipalId, roles.cognitiveServicesUser)
  scope: face
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesUser)
  }
}

// Monitoring Metrics Publisher on Application Insights: Entra-authenticated telemetry ingestion
// (the component has local auth disabled).
resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
