// Event Grid system topic on the photo storage account. Its event subscription (BlobCreated in
// `uploads` -> the `enroll` function's blobs-extension webhook) is created by
// scripts/post-deploy.sh after code deployment, because the webhook URL carries the
// `blobs_extension` system key that exists only once the app runs.
// The topic's system-assigned identity writes dead-lettered events to the
// `eventgrid-deadletter` container (Storage Blob Data Contributor on that container, rbac.bicep).
param name string
param location string = resourceGroup().location
param tags object = {}
param photoStorageAccountId string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: photoStorageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
output id string = systemTopic.id
output principalId string = systemTopic.identity.principalId
