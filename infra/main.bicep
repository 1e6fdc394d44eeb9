// face-enrollment: Azure infrastructure (azd layout, Flex Consumption).
//
// Deploy with `azd up` (see docs/deployment.md). The Event Grid subscription that feeds the
// `enroll` blob trigger is NOT created here: it needs the function's `blobs_extension` system key,
// which exists only after the code is deployed, so scripts/post-deploy.sh creates it (azd
// postdeploy hook), as the Azure-Samples Flex Consumption templates do.
//
// No keys, no connection strings with secrets, no listKeys(): every data-plane access is
// Microsoft Entra ID through one user-assigned managed identity and least-privilege roles
// (app/rbac.bicep).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to generate a short unique hash for resource names.')
param environmentName string

@minLength(1)
@description('Primary location for all resources (must offer Flex Consumption and the Face API).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Optional: name of the resource group to create. Default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Optional: object (principal) id of the HR system identity allowed to publish to the hr-events topic. Empty = no assignment.')
param hrSystemPrincipalId string = ''

@description('Public network access of the Face account. Disable only together with a private endpoint (not part of this template).')
@allowed([
  'Enabled'
  'Disabled'
])
param facePublicNetworkAccess string = 'Enabled'

@description('Face SKU. S0 is required for bulk work (F0 allows 20 calls/min).')
@allowed([
  'S0'
  'F0'
])
param faceSku string = 'S0'

@description('Flex Consumption: maximum instance count. Together with host.json concurrency this caps the Face call rate.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: instance memory size in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// --- tunables (app settings with `where == "both"` in shared/settings.py; defaults identical) ---
@description('FACE_CALLS_PER_SECOND: Face call budget re-enrollment shapes its fan-out to (S0 default 10 TPS).')
param faceCallsPerSecond string = '10'

@description('CONSENT_RETENTION_DAYS: consent not renewed for this long is erased by purge_timer.')
param consentRetentionDays string = '365'

@description('PURGE_SCHEDULE: NCRONTAB schedule of purge_timer (UTC).')
param purgeSchedule string = '0 0 3 * * *'

@description('SAS_TTL_MINUTES: life of an upload SAS URL (1..15).')
param sasTtlMinutes string = '10'

@description('ADMIN_ROLE: app role that grants admin rights.')
param adminRole string = 'FaceEnrollment.Admin'

// --- App Service Authentication (Easy Auth); see docs/deployment.md "Sign-in" ---
@minLength(1)
@description('Client (application) id of the front end\'s Entra app registration (azd env AUTH_CLIENT_ID). Required: without it nobody can sign in, and the template never deploys an open API.')
param authClientId string

@description('Extra allowed token audiences, comma-separated (azd env AUTH_ALLOWED_AUDIENCES). The client id and api://<client id> are always allowed.')
param authAllowedAudiences string = ''

@description('Entra tenant of the app registration (azd env AUTH_TENANT_ID). Empty = the tenant of the deployment subscription.')
param authTenantId string = ''

@description('v1 (default) or v2: the token version Easy Auth signs users in with (azd env AUTH_ISSUER_VERSION). Only v1 ID tokens carry `amr`, which the MFA gate of consent, upload and admin routes needs.')
@allowed([
  'v1'
  'v2'
])
param authIssuerVersion string = 'v1'

@description('Days after which dead-lettered Event Grid events (they name the uploaded blob) are deleted by a lifecycle rule.')
@minValue(1)
param deadLetterRetentionDays int = 14

@description('Days each consent-ledger anchor stays immutable (WORM, locked by scripts/post-deploy.sh; can then only be extended). Default: 7 years.')
@minValue(1)
param ledgerAnchorRetentionDays int = 2555

@description('Redundancy of both storage accounts (azd env STORAGE_SKU). scripts/preflight.sh stops when the region offers no ZRS and this is still Standard_ZRS.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Optional suffix of the Face account name and subdomain (azd env FACE_NAME_SUFFIX): lets a new deployment avoid a soft-deleted account of the same name instead of purging it. See docs/deployment.md.')
@maxLength(8)
param faceNameSuffix string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var effectiveAuthTenantId = empty(authTenantId) ? tenant().tenantId : authTenantId
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// Names shared by the resources and the app settings (defaults of shared/settings.py).
var uploadsContainerName = 'uploads'
var keptPhotosContainerName = 'kept-photos'
var deadLetterContainerName = 'eventgrid-deadletter'
var ledgerAnchorsContainerName = 'ledger-anchors'
var tablePrefix = 'faceenroll'
var revocationsQueueName = 'revocations'
var modelUpdatesQueueName = 'model-updates'
var reenrollWorkQueueName = 'reenroll-work'
var hrEventsTopicName = 'hr-events'
var hrEventsSubscriptionName = 'face-enrollment'

var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
// The app's origin, for the photo account's CORS rule (the browser PUTs to the SAS URL from a
// page served by the app). Computed, not taken from the app's output, because the app depends on
// the storage accounts; scripts/post-deploy.sh warns if the real default host name differs.
var functionAppOrigin = 'https://${functionAppName}.azurewebsites.net'
// Flex Consumption deployment package container (same naming as the azd samples).
var deploymentStorageContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    hostAccountName: '${abbrs.storageStorageAccounts}${resourceToken}'
    photoAccountName: '${abbrs.storageStorageAccounts}photo${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentStorageContainerName
    uploadsContainerName: uploadsContainerName
    keptPhotosContainerName: keptPhotosContainerName
    deadLetterContainerName: deadLetterContainerName
    deadLetterMaxAgeDays: deadLetterRetentionDays
    ledgerAnchorsContainerName: ledgerAnchorsContainerName
    ledgerAnchorRetentionDays: ledgerAnchorRetentionDays
    skuName: storageSku
    corsAllowedOrigins: [
      functionAppOrigin
    ]
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module servicebus 'app/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: '${abbrs.serviceBusNamespaces}${resourceToken}'
    location: location
    tags: tags
    revocationsQueueName: revocationsQueueName
    modelUpdatesQueueName: modelUpdatesQueueName
    reenrollWorkQueueName: reenrollWorkQueueName
    hrEventsTopicName: hrEventsTopicName
    hrEventsSubscriptionName: hrEventsSubscriptionName
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module face 'app/face.bicep' = {
  name: 'face'
  scope: rg
  params: {
    name: '${abbrs.cognitiveServicesFace}${resourceToken}${toLower(faceNameSuffix)}'
    location: location
    tags: tags
    sku: faceSku
    publicNetworkAccess: facePublicNetworkAccess
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module eventgrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}photos-${resourceToken}'
    location: location
    tags: tags
    photoStorageAccountId: storage.outputs.photoAccountId
  }
}

module doorEvents 'app/doorevents.bicep' = {
  name: 'doorevents'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopics}doors-${resourceToken}'
    location: location
    tags: tags
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    hostStorageAccountName: storage.outputs.hostAccountName
    photoStorageAccountName: storage.outputs.photoAccountName
    deploymentStorageContainerName: deploymentStorageContainerName
    serviceBusFullyQualifiedNamespace: servicebus.outputs.fullyQualifiedNamespace
    faceEndpoint: face.outputs.endpoint
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    uploadsContainerName: uploadsContainerName
    keptPhotosContainerName: keptPhotosContainerName
    ledgerAnchorsContainerName: ledgerAnchorsContainerName
    doorEventsTopicEndpoint: doorEvents.outputs.endpoint
    tablePrefix: tablePrefix
    revocationsQueueName: revocationsQueueName
    modelUpdatesQueueName: modelUpdatesQueueName
    reenrollWorkQueueName: reenrollWorkQueueName
    hrEventsTopicName: hrEventsTopicName
    hrEventsSubscriptionName: hrEventsSubscriptionName
    faceCallsPerSecond: faceCallsPerSecond
    consentRetentionDays: consentRetentionDays
    purgeSchedule: purgeSchedule
    sasTtlMinutes: sasTtlMinutes
    adminRole: adminRole
    authClientId: authClientId
    authAllowedAudiences: authAllowedAudiences
    authTenantId: effectiveAuthTenantId
    authIssuerVersion: authIssuerVersion
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    hostStorageAccountName: storage.outputs.hostAccountName
    photoStorageAccountName: storage.outputs.photoAccountName
    deadLetterContainerName: deadLetterContainerName
    serviceBusNamespaceName: servicebus.outputs.name
    revocationsQueueName: revocationsQueueName
    modelUpdatesQueueName: modelUpdatesQueueName
    reenrollWorkQueueName: reenrollWorkQueueName
    hrEventsTopicName: hrEventsTopicName
    hrEventsSubscriptionName: hrEventsSubscriptionName
    faceAccountName: face.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    systemTopicPrincipalId: eventgrid.outputs.principalId
    doorEventsTopicName: doorEvents.outputs.name
    hrSystemPrincipalId: hrSystemPrincipalId
  }
}

// --- outputs (azd writes them to the environment; scripts/post-deploy.* reads them) ---
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_BASE_URL string = api.outputs.baseUrl
output AZURE_CLIENT_ID string = identity.outputs.clientId
output PHOTO_STORAGE_ACCOUNT_NAME string = storage.outputs.photoAccountName
output PHOTO_STORAGE_ACCOUNT_ID string = storage.outputs.photoAccountId
output UPLOADS_CONTAINER_NAME string = uploadsContainerName
output EVENTGRID_DEADLETTER_CONTAINER_NAME string = deadLetterContainerName
output LEDGER_ANCHORS_CONTAINER_NAME string = ledgerAnchorsContainerName
output DOOR_EVENTS_TOPIC_NAME string = doorEvents.outputs.name
output PHOTOS_SYSTEM_TOPIC_NAME string = eventgrid.outputs.name
output ENROLL_FUNCTION_NAME string = 'enroll'
output SERVICE_BUS_NAMESPACE string = servicebus.outputs.fullyQualifiedNamespace
output FACE_ENDPOINT string = face.outputs.endpoint
// Kept in the azd environment after `azd down`: scripts/preflight.sh uses them to find a
// soft-deleted Face account that would block the next `azd up` (FlagMustBeSetForRestore).
output FACE_ACCOUNT_NAME string = face.outputs.name
output RESOURCE_TOKEN string = resourceToken
output AUTH_TENANT_ID string = effectiveAuthTenantId
