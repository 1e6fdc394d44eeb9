// Two storage accounts, both Entra-only (shared key off, so only user-delegation SAS works):
//
// - host account: AzureWebJobsStorage (leases, keys, timer state) and the Flex Consumption
//   deployment package container. No personal data.
// - photo account ("PhotoStorage"): the `uploads` and `kept-photos` containers, the app's
//   consent/mapping tables and the Event Grid dead-letter container.
//
// Why two: the photo account holds biometric data and is configured for provable erasure (no
// soft delete, no versioning, no change feed, a lifecycle backstop on uploads), its Event Grid
// system topic sees only photo uploads (not the host's lease/package blobs), and its roles can be
// reasoned about separately from the Functions host's. The host account is kept just as strict
// (soft delete off too) because infra/policies/ checks every blob service in infra/.
param hostAccountName string
param photoAccountName string
param location string = resourceGroup().location
param tags object = {}

param deploymentContainerName string
param uploadsContainerName string
param keptPhotosContainerName string
param deadLetterContainerName string
param ledgerAnchorsContainerName string

@description('Days each consent-ledger anchor is kept immutable (WORM). The legal proof period of consent: once the policy is locked (scripts/post-deploy.sh) it can only be extended, never shortened or removed.')
@minValue(1)
@maxValue(146000)
param ledgerAnchorRetentionDays int = 2555

@description('Lifecycle backstop: delete blobs in the uploads container older than this many days (the app purges stale uploads after UPLOAD_MAX_AGE_MINUTES itself).')
param uploadsMaxAgeDays int = 1

@description('Dead-lettered Event Grid events (each names an uploaded blob) are deleted after this many days.')
@minValue(1)
param deadLetterMaxAgeDays int = 14

@description('Origins allowed to PUT photos with a SAS URL from a browser (the function app\'s own origin).')
param corsAllowedOrigins array

@description('Log Analytics workspace that receives the photo account\'s blob read/write/delete logs.')
param logAnalyticsWorkspaceId string

@description('Storage redundancy. ZRS keeps copies in-region only: no asynchronous secondary-region copy of biometric data. Not every region offers ZRS: scripts/preflight.sh checks and tells you to set STORAGE_SKU=Standard_LRS.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param skuName string = 'Standard_ZRS'

resource hostAccount 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: hostAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    //checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches its host storage over the public endpoint; the Functions service is not a trusted AzureServices bypass. Access is Entra-only (shared key off).
    //checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: public endpoint needed by Flex Consumption without VNet integration; shared key access is disabled so only RBAC-authorised identities get in.
    //checkov:skip=CKV_AZURE_206:Replication is a parameter (ZRS by default); geo-redundancy is deliberately not used so no copy leaves the region.
    //checkov:skip=CKV_AZURE_43:False positive: the name is a Bicep expression ('st' + uniqueString token), which checkov cannot evaluate.
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: hostAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: false
    }
    containerDeleteRetentionPolicy: {
      enabled: false
    }
    isVersioningEnabled: false
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource photoAccount 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: photoAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    //checkov:skip=CKV_AZURE_35:Front ends upload photos straight to the uploads container with a per-blob, create-only user-delegation SAS from the internet, and Flex without VNet integration uses the public endpoint. Shared key is off.
    //checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: SAS uploads from clients need the public endpoint; authorisation is Entra-only (RBAC, user-delegation SAS).
    //checkov:skip=CKV_AZURE_206:Replication is a parameter (ZRS by default); geo-redundancy is deliberately not used for biometric photos (no cross-region copy, no lagging replica after an erasure).
    //checkov:skip=CKV_AZURE_43:False positive: the name is a Bicep expression ('stphoto' + uniqueString token), which checkov cannot evaluate.
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// ERASURE: blob soft delete, container soft delete, versioning and change feed are OFF on the
// photo account on purpose. A revocation or a purge must be an erasure: with soft delete on, a
// deleted photo (and a lifecycle-management delete) only becomes "soft-deleted" and stays
// readable/restorable for the retention period; with versioning on, every overwrite and delete
// leaves a previous version behind. Either would let biometric photos survive a consent
// revocation. infra/policies/ fails the build if any of these is switched on.
resource photoBlobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: photoAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: false
    }
    containerDeleteRetentionPolicy: {
      enabled: false
    }
    isVersioningEnabled: false
    changeFeed: {
      enabled: false
    }
    restorePolicy: {
      enabled: false
    }
    // CORS for the browser upload: the front end (served by the app) PUTs each photo to its
    // per-blob, create-only SAS URL. Only the app's origin, only PUT (the service answers the
    // OPTIONS preflight for matching rules), only the headers that upload sends; exposed: only
    // the request id, for support. (pycep, checkov's parser, rejects 5+ comment lines here.)
    cors: {
      corsRules: [
        {
          allowedOrigins: corsAllowedOrigins
          allowedMethods: [
            'PUT'
          ]
          allowedHeaders: [
            'x-ms-blob-type'
            'content-type'
            'x-ms-version'
            'x-ms-date'
            'x-ms-client-request-id'
            'content-length'
          ]
          exposedHeaders: [
            'x-ms-request-id'
          ]
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

// Access log of the biometric photos: every read, write and delete of a blob, with the caller's
// identity, sent to Log Analytics. These records name the blob (an upload id or a kept-photo
// name); they leave the workspace after its retention period (monitoring.bicep), which is how an
// erasure eventually reaches them. See docs/deployment.md, "Diagnostic logs".
resource photoBlobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'photo-blob-access-to-log-analytics'
  scope: photoBlobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource uploadsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: photoBlobService
  name: uploadsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource keptPhotosContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: photoBlobService
  name: keptPhotosContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Event Grid dead-letters undeliverable BlobCreated events here (with the system topic's own
// managed identity, see rbac.bicep and scripts/post-deploy.sh).
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: photoBlobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The consent ledger's daily anchors (a Merkle root over every user's hash chain head, written by
// purge_timer): write once, read many. Container-level time-based retention, not version-level:
// version-level WORM needs blob versioning on the account, and versioning is off here on purpose
// (ERASURE above, infra/policies/blob_versioning_off.yaml); container-level WORM needs no
// versioning. ARM cannot create a policy in the Locked state: Bicep creates it Unlocked and
// scripts/post-deploy.sh locks it (the lock action), after which nobody, admins included, can
// shorten or delete it; the container cannot be deleted while it holds blobs under retention.
// https://learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies
// https://learn.microsoft.com/azure/storage/blobs/immutable-version-level-worm-policies
// https://learn.microsoft.com/rest/api/storagerp/blob-containers/lock-immutability-policy
// infra/policies/ledger_anchors_worm.yaml fails the build without the policy; check_infra.py
// fails it if the post-deploy scripts stop locking it.
resource ledgerAnchorsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: photoBlobService
  name: ledgerAnchorsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource ledgerAnchorsImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2024-01-01' = {
  parent: ledgerAnchorsContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: ledgerAnchorRetentionDays
    // Anchors are written once, whole: no appends to protected blobs.
    allowProtectedAppendWrites: false
    allowProtectedAppendWritesAll: false
  }
}

// Tables (TABLE_PREFIX + suffix, prefix `faceenroll`) are created by the app at run time
// (create-if-not-exists with its Storage Table Data Contributor role), so none are declared here.

// Backstop for stale uploads: the app deletes an upload once it is enrolled or rejected and
// purge_timer removes uploads older than UPLOAD_MAX_AGE_MINUTES; this rule catches anything both
// missed. With soft delete off, a lifecycle delete is a real delete.
resource photoLifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = {
  parent: photoAccount
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-stale-uploads'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${uploadsContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: uploadsMaxAgeDays
                }
              }
            }
          }
        }
        {
          // Dead-lettered BlobCreated events carry the blob URL (an upload id) and need a person
          // to look at them within days, not forever.
          name: 'delete-old-eventgrid-deadletters'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              // Event Grid's blob type for dead letters is not documented: cover both kinds
              // that a lifecycle delete supports.
              blobTypes: [
                'blockBlob'
                'appendBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deadLetterMaxAgeDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    uploadsContainer
    deadLetterContainer
  ]
}

output hostAccountName string = hostAccount.name
output hostAccountId string = hostAccount.id
output photoAccountName string = photoAccount.name
output photoAccountId string = photoAccount.id
output deploymentContainerName string = deploymentContainer.name
output uploadsContainerName string = uploadsContainer.name
output keptPhotosContainerName string = keptPhotosContainer.name
output deadLetterContainerName string = deadLetterContainer.name
output ledgerAnchorsContainerName string = ledgerAnchorsContainer.name
