// Azure AI Face account. Entra-only: `disableLocalAuth` means no keys exist, so the app calls
// Face with a managed-identity token, which requires the custom subdomain endpoint.
// The LargePersonGroup itself is a data-plane object created by the app (idempotent PUT).
param name string
param location string = resourceGroup().location
param tags object = {}

@allowed([
  'S0'
  'F0'
])
param sku string = 'S0'

@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Globally unique custom subdomain (required for Entra ID authentication).')
param customSubDomainName string = name

@description('Log Analytics workspace that receives the account\'s Audit logs.')
param logAnalyticsWorkspaceId string

resource face 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'Face'
  sku: {
    name: sku
  }
  properties: {
    //checkov:skip=CKV_AZURE_134:publicNetworkAccess is a parameter (facePublicNetworkAccess); Flex Consumption without VNet integration calls Face over its public endpoint. Local auth is disabled, so only the app identity (Cognitive Services User) can call it.
    //checkov:skip=CKV_AZURE_238:The Face account makes no outbound calls (no customer-managed key, no storage access), so it gets no managed identity; callers use theirs.
    customSubDomainName: customSubDomainName
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

// Audit: who did what to the account (key, network and identity operations, data-plane access
// with an Entra identity), kept for the workspace retention period. RequestResponse is NOT sent:
// its per-request records may carry the request path, and Face paths contain personIds, which
// must never reach a log that erasure cannot reach (docs/deployment.md, "Diagnostic logs").
resource faceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'face-audit-to-log-analytics'
  scope: face
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'Audit'
        enabled: true
      }
    ]
  }
}

output name string = face.name
output id string = face.id
output endpoint string = face.properties.endpoint
