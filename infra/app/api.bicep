// The function app: Flex Consumption (FC1, Linux), Python 3.11, one user-assigned identity.
//
// App settings: every setting of shared/settings.py SETTINGS with `where` in (azure, both) is set
// here, and none with `where == "local"` (PhotoStorage connection string, MESSAGING_TRANSPORT,
// FACE_KEY). tests/integration/test_infra.py compares this list with SETTINGS, so a setting cannot
// exist in one place only; the `both` tunables are parameters whose defaults equal SETTINGS'.
// The only other settings are the platform's (AzureWebJobsStorage__*, APPLICATIONINSIGHTS_*).
// FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION / WEBSITE_RUN_FROM_PACKAGE are NOT set:
// they are deprecated on Flex Consumption (runtime and package come from functionAppConfig).
param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

param identityId string
param identityClientId string
param applicationInsightsName string
param hostStorageAccountName string
param photoStorageAccountName string
param deploymentStorageContainerName string
param serviceBusFullyQualifiedNamespace string
param faceEndpoint string

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

param pythonVersion string = '3.11'

// --- `both` tunables of shared/settings.py (defaults identical to SETTINGS) ---
@description('FACE_API_VERSION: Face REST API version segment in the path.')
param faceApiVersion string = 'v1.2'

@description('FACE_RECOGNITION_MODEL: Recognition model for new groups and detection.')
param faceRecognitionModel string = 'recognition_04'

@description('FACE_DETECTION_MODEL: Detection model for detect and add-face.')
param faceDetectionModel string = 'detection_03'

@description('FACE_CALLS_PER_SECOND: Face call budget that re-enrollment shapes its fan-out to.')
param faceCallsPerSecond string = '10'

@description('FACE_TIMEOUT_SECONDS: Timeout of one Face HTTP call.')
param faceTimeoutSeconds string = '10'

@description('FACE_MAX_RETRIES: Retries of one Face call on 429, 503 and transient errors.')
param faceMaxRetries string = '5'

@description('UPLOADS_CONTAINER: Container the front ends upload photos to (SAS, create-only).')
param uploadsContainerName string = 'uploads'

@description('KEPT_PHOTOS_CONTAINER: Container of photos kept with `storePhotos` consent.')
param keptPhotosContainerName string = 'kept-photos'

@description('TABLE_PREFIX: Prefix of every table name this app uses.')
param tablePrefix string = 'faceenroll'

@description('REVOCATIONS_QUEUE: Service Bus queue of revocation commands.')
param revocationsQueueName string = 'revocations'

@description('MODEL_UPDATES_QUEUE: Service Bus queue that starts a re-enrollment.')
param modelUpdatesQueueName string = 'model-updates'

@description('REENROLL_WORK_QUEUE: Service Bus queue of re-enrollment work items.')
param reenrollWorkQueueName string = 'reenroll-work'

@description('HR_EVENTS_TOPIC: Service Bus topic the HR system publishes CloudEvents to.')
param hrEventsTopicName string = 'hr-events'

@description('HR_EVENTS_SUBSCRIPTION: Subscription of this app on the HR topic.')
param hrEventsSubscriptionName string = 'face-enrollment'

@description('PURGE_SCHEDULE: NCRONTAB schedule of purge_timer (UTC).')
param purgeSchedule string = '0 0 3 * * *'

@description('USER_KEY_CLAIM: Claim of the signed-in principal that identifies the user.')
param userKeyClaim string = 'oid'

@description('HR_KEY_CLAIM: Claim that carries the HR employee id.')
param hrKeyClaim string = 'employeeid'

@description('ADMIN_ROLE: App role that grants admin rights.')
param adminRole string = 'FaceEnrollment.Admin'

@description('TERMINATION_EVENT_TYPES: Comma-separated CloudEvent types meaning terminated.')
param terminationEventTypes string = 'hr.employee.terminated'

@description('SAS_TTL_MINUTES: Life of an upload SAS URL (at most 15).')
param sasTtlMinutes string = '10'

@description('CONSENT_RETENTION_DAYS: Consent not renewed for this long is erased by purge_timer.')
param consentRetentionDays string = '365'

@description('UPLOAD_MAX_AGE_MINUTES: Uploads and sessions older than this are deleted by purge_timer.')
param uploadMaxAgeMinutes string = '60'

@description('GROUP_GRACE_DAYS: Days a superseded group is kept after a re-enrollment switch.')
param groupGraceDays string = '7'

@description('TRAINING_COALESCE_SECONDS: Enrollments arriving within this window share one training.')
param trainingCoalesceSeconds string = '5'

@description('HR_REQUIRE_EMPLOYEE_ID: `true` refuses consent without the employee-id claim; `false` grants it and audits the gap.')
param hrRequireEmployeeId string = 'false'

@description('AUDIT_RETENTION_DAYS: Audit rows older than this are deleted by purge_timer.')
param auditRetentionDays string = '400'

@description('AUDIT_HASH_KEY comes from this Key Vault secret (a versionless secret URI; the app identity needs Key Vault Secrets User on it). Empty: the app falls back to a development key that is not a secret; set it before production (docs/operations.md).')
param auditHashKeySecretUri string = ''

@description('QUALITY_MIN_FACE_AREA: Minimum face rectangle area in px².')
param qualityMinFaceArea string = '10000'

@description('QUALITY_MAX_YAW: Maximum absolute head yaw in degrees.')
param qualityMaxYaw string = '35'

@description('QUALITY_MAX_PITCH: Maximum absolute head pitch in degrees.')
param qualityMaxPitch string = '35'

@description('QUALITY_MAX_ROLL: Maximum absolute head roll in degrees.')
param qualityMaxRoll string = '20'

@description('QUALITY_MAX_BLUR: Maximum blur value (0..1).')
param qualityMaxBlur string = '0.4'

@description('QUALITY_MIN_EXPOSURE: Minimum exposure value (0..1).')
param qualityMinExposure string = '0.25'

@description('QUALITY_MAX_EXPOSURE: Maximum exposure value (0..1).')
param qualityMaxExposure string = '0.75'

@description('QUALITY_MIN_RECOGNITION: Minimum qualityForRecognition (low, medium, high).')
param qualityMinRecognition string = 'high'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var storageSuffix = environment().suffixes.storage
var hostBlobUri = 'https://${hostStorageAccountName}.blob.${storageSuffix}'
var photoBlobUri = 'https://${photoStorageAccountName}.blob.${storageSuffix}'
var photoQueueUri = 'https://${photoStorageAccountName}.queue.${storageSuffix}'
var photoTableUri = 'https://${photoStorageAccountName}.table.${storageSuffix}'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    //checkov:skip=CKV_AZURE_225:Zone redundancy of a Flex Consumption plan is a regional opt-in not available in every Flex region; left to the platform team per region.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    //checkov:skip=CKV_AZURE_222:The HTTP API must be reachable by the front ends and Event Grid must reach the blobs-extension webhook; Flex here has no VNet/private endpoint.
    //checkov:skip=CKV_AZURE_17:Callers authenticate with Entra ID (App Service authentication / function keys for the Event Grid webhook), not client certificates.
    //checkov:skip=CKV_AZURE_18:HTTP/2 (siteConfig.http20Enabled) is not set: not verified to be accepted on Flex Consumption, whose siteConfig rejects several App Service properties.
    //checkov:skip=CKV_AZURE_67:Same as CKV_AZURE_18 (HTTP version is the platform default on Flex Consumption).
    //checkov:skip=CKV_AZURE_213:Health check (siteConfig.healthCheckPath) applies to App Service instances behind the front end; Flex Consumption scales per function from zero.
    //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per function by design; warm capacity would be functionAppConfig alwaysReady (cost), not an App Service minimum worker count.
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobUri}/${deploymentStorageContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // --- platform: host storage through the managed identity (no AzureWebJobsStorage connection string) ---
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: hostBlobUri
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: 'https://${hostStorageAccountName}.queue.${storageSuffix}'
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: 'https://${hostStorageAccountName}.table.${storageSuffix}'
        }
        // --- platform: Application Insights with Entra (local auth disabled on the component).
        // The connection string holds only the instrumentation key and ingestion endpoint, which
        // are identifiers, not secrets: with DisableLocalAuth ingestion requires the token.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // --- `azure` settings: identity-based connections (names exactly as in shared/settings.py) ---
        {
          name: 'PhotoStorage__blobServiceUri'
          value: photoBlobUri
        }
        {
          name: 'PhotoStorage__queueServiceUri'
          value: photoQueueUri
        }
        {
          name: 'PhotoStorage__tableServiceUri'
          value: photoTableUri
        }
        {
          name: 'PhotoStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'PhotoStorage__clientId'
          value: identityClientId
        }
        {
          name: 'ServiceBusConnection__fullyQualifiedNamespace'
          value: serviceBusFullyQualifiedNamespace
        }
        {
          name: 'ServiceBusConnection__credential'
          value: 'managedidentity'
        }
        {
          name: 'ServiceBusConnection__clientId'
          value: identityClientId
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'FACE_ENDPOINT'
          value: faceEndpoint
        }
        // --- `both` tunables ---
        {
          name: 'FACE_API_VERSION'
          value: faceApiVersion
        }
        {
          name: 'FACE_RECOGNITION_MODEL'
          value: faceRecognitionModel
        }
        {
          name: 'FACE_DETECTION_MODEL'
          value: faceDetectionModel
        }
        {
          name: 'FACE_CALLS_PER_SECOND'
          value: faceCallsPerSecond
        }
        {
          name: 'FACE_TIMEOUT_SECONDS'
          value: faceTimeoutSeconds
        }
        {
          name: 'FACE_MAX_RETRIES'
          value: faceMaxRetries
        }
        {
          name: 'UPLOADS_CONTAINER'
          value: uploadsContainerName
        }
        {
          name: 'KEPT_PHOTOS_CONTAINER'
          value: keptPhotosContainerName
        }
        {
          name: 'TABLE_PREFIX'
          value: tablePrefix
        }
        {
          name: 'REVOCATIONS_QUEUE'
          value: revocationsQueueName
        }
        {
          name: 'MODEL_UPDATES_QUEUE'
          value: modelUpdatesQueueName
        }
        {
          name: 'REENROLL_WORK_QUEUE'
          value: reenrollWorkQueueName
        }
        {
          name: 'HR_EVENTS_TOPIC'
          value: hrEventsTopicName
        }
        {
          name: 'HR_EVENTS_SUBSCRIPTION'
          value: hrEventsSubscriptionName
        }
        {
          name: 'PURGE_SCHEDULE'
          value: purgeSchedule
        }
        {
          name: 'USER_KEY_CLAIM'
          value: userKeyClaim
        }
        {
          name: 'HR_KEY_CLAIM'
          value: hrKeyClaim
        }
        {
          name: 'ADMIN_ROLE'
          value: adminRole
        }
        {
          name: 'TERMINATION_EVENT_TYPES'
          value: terminationEventTypes
        }
        {
          name: 'SAS_TTL_MINUTES'
          value: sasTtlMinutes
        }
        {
          name: 'CONSENT_RETENTION_DAYS'
          value: consentRetentionDays
        }
        {
          name: 'UPLOAD_MAX_AGE_MINUTES'
          value: uploadMaxAgeMinutes
        }
        {
          name: 'GROUP_GRACE_DAYS'
          value: groupGraceDays
        }
        {
          name: 'TRAINING_COALESCE_SECONDS'
          value: trainingCoalesceSeconds
        }
        {
          name: 'HR_REQUIRE_EMPLOYEE_ID'
          value: hrRequireEmployeeId
        }
        {
          name: 'AUDIT_RETENTION_DAYS'
          value: auditRetentionDays
        }
        {
          name: 'AUDIT_HASH_KEY'
          value: empty(auditHashKeySecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${auditHashKeySecretUri})'
        }
        {
          name: 'QUALITY_MIN_FACE_AREA'
          value: qualityMinFaceArea
        }
        {
          name: 'QUALITY_MAX_YAW'
          value: qualityMaxYaw
        }
        {
          name: 'QUALITY_MAX_PITCH'
          value: qualityMaxPitch
        }
        {
          name: 'QUALITY_MAX_ROLL'
          value: qualityMaxRoll
        }
        {
          name: 'QUALITY_MAX_BLUR'
          value: qualityMaxBlur
        }
        {
          name: 'QUALITY_MIN_EXPOSURE'
          value: qualityMinExposure
        }
        {
          name: 'QUALITY_MAX_EXPOSURE'
          value: qualityMaxExposure
        }
        {
          name: 'QUALITY_MIN_RECOGNITION'
          value: qualityMinRecognition
        }
      ]
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output baseUrl string = 'https://${functionApp.properties.defaultHostName}'
