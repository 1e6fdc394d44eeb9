# azd preprovision hook (Windows): the same checks as scripts/preflight.sh, see the comments there.
# Reads only; stops with the commands to run. Skip with PREFLIGHT_SKIP=1 (not recommended).
# Kept equivalent to preflight.sh by review (pwsh is not in CI; tests/unit/test_preflight.py runs
# the .sh against a fake az and checks that this file names the same providers and commands).
$ErrorActionPreference = 'Continue'

if ($env:PREFLIGHT_SKIP -eq '1') { Write-Host 'preflight: skipped (PREFLIGHT_SKIP=1)'; exit 0 }

$docs = 'docs/deployment.md'
$providers = @(
    'Microsoft.Web',
    'Microsoft.Storage',
    'Microsoft.CognitiveServices',
    'Microsoft.ServiceBus',
    'Microsoft.EventGrid',
    'Microsoft.OperationalInsights',
    'Microsoft.Insights',
    'Microsoft.ManagedIdentity'
)
$facePrefix = 'face-'   # infra/abbreviations.json cognitiveServicesFace
$script:problems = 0
$unchecked = @()   # reads that failed: reported, never taken as "nothing found"

function Stop-Preflight([string]$what, [string[]]$todo) {
    $script:problems++
    [Console]::Error.WriteLine("`npreflight: STOP: $what")
    foreach ($line in $todo) { [Console]::Error.WriteLine("    $line") }
}

# --- 1. az and the target
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    [Console]::Error.WriteLine('preflight: STOP: the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli')
    exit 1
}
$signedInSub = az account show --query id -o tsv 2>$null
if ($LASTEXITCODE -ne 0 -or -not $signedInSub) {
    [Console]::Error.WriteLine('preflight: STOP: az is not signed in. Run: az login (and azd auth login), then azd up again.')
    exit 1
}
$sub = if ($env:AZURE_SUBSCRIPTION_ID) { $env:AZURE_SUBSCRIPTION_ID } else { $signedInSub }
$location = ("$env:AZURE_LOCATION").ToLowerInvariant().Replace(' ', '')
$rg = if ($env:AZURE_RESOURCE_GROUP) { $env:AZURE_RESOURCE_GROUP } else { "rg-$env:AZURE_ENV_NAME" }
if (-not $location) {
    [Console]::Error.WriteLine('preflight: STOP: AZURE_LOCATION is not set. Run: azd env set AZURE_LOCATION <region>')
    exit 1
}
Write-Host "preflight: subscription $sub, region $location, resource group $rg"

# --- 2. sign-in app registration
$guid = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
if (-not $env:AUTH_CLIENT_ID) {
    Stop-Preflight "AUTH_CLIENT_ID is not set: App Service Authentication needs the front end's Entra app registration." @(
        'Create it (redirect URI https://<app>/.auth/login/aad/callback, ID tokens, app role FaceEnrollment.Admin):',
        "see $docs, section `"Sign-in: the app registration`". Then: azd env set AUTH_CLIENT_ID <application (client) id>")
} elseif ($env:AUTH_CLIENT_ID -notmatch $guid) {
    Stop-Preflight "AUTH_CLIENT_ID '$env:AUTH_CLIENT_ID' is not an application (client) id (a GUID)." @(
        "Copy the 'Application (client) ID' from the app registration's Overview page: azd env set AUTH_CLIENT_ID <guid>")
}

# --- 3. resource providers
$unregistered = @()
foreach ($ns in $providers) {
    $state = az provider show --namespace $ns --query registrationState -o tsv 2>$null
    if ($state -ne 'Registered') { $unregistered += $ns }
}
if ($unregistered.Count -gt 0) {
    $cmds = $unregistered | ForEach-Object { "az provider register --namespace $_ --wait" }
    Stop-Preflight "resource providers not registered in subscription ${sub}: $($unregistered -join ', ')" (@(
        'Registering needs the */register/action permission (Contributor or Owner on the subscription). Run:') + $cmds)
}

# --- 4. the region offers Flex Consumption and Face
$flex = az functionapp list-flexconsumption-locations --query "length(@[?name=='$location'])" -o tsv 2>$null
if ($LASTEXITCODE -ne 0) { $unchecked += "Flex Consumption in $location (az functionapp list-flexconsumption-locations failed)" }
if ($flex -eq '0') {
    Stop-Preflight "region $location does not offer the Flex Consumption plan." @(
        'List the regions that do: az functionapp list-flexconsumption-locations -o table',
        'Then: azd env set AZURE_LOCATION <region> (it must offer the Face API too).')
}
$faceSkus = az cognitiveservices account list-skus --kind Face --location $location --query 'length(@)' -o tsv 2>$null
if ($LASTEXITCODE -ne 0) { $unchecked += "Face in $location (az cognitiveservices account list-skus failed)" }
if ($faceSkus -eq '0') {
    Stop-Preflight "region $location does not offer the Face API (kind Face) to this subscription." @(
        'Choose a region that offers both Face and Flex Consumption: azd env set AZURE_LOCATION <region>')
}

# --- 5. zone-redundant storage
$storageSku = if ($env:STORAGE_SKU) { $env:STORAGE_SKU } else { 'Standard_ZRS' }
if ($storageSku -eq 'Standard_ZRS') {
    $query = "length(value[?name=='Standard_ZRS' && kind=='StorageV2' && contains(locations, '$location') && length(restrictions[?type=='Location' && contains(values, '$location')]) == ``0``])"
    $zrs = az rest --method get --url "/subscriptions/$sub/providers/Microsoft.Storage/skus?api-version=2023-05-01" --query $query -o tsv 2>$null
    if ($LASTEXITCODE -ne 0) { $zrs = ''; $unchecked += "zone-redundant storage in $location (az rest .../Microsoft.Storage/skus failed)" }
    if ($zrs -eq '0') {
        Stop-Preflight "region $location does not offer zone-redundant storage (Standard_ZRS) to this subscription." @(
            'Either keep the region with locally redundant storage (three copies in one datacenter; still no copy',
            'leaves the region): azd env set STORAGE_SKU Standard_LRS',
            'or choose a region with availability zones: azd env set AZURE_LOCATION <region>')
    }
}

# --- 6. soft-deleted Face account (FlagMustBeSetForRestore)
$suffix = ("$env:FACE_NAME_SUFFIX").ToLowerInvariant()
$expected = if ($env:RESOURCE_TOKEN) { "$facePrefix$($env:RESOURCE_TOKEN)$suffix" } else { '' }
$deleted = az cognitiveservices account list-deleted --query "[?kind=='Face' && location=='$location'].[name, id]" -o tsv 2>$null
if ($LASTEXITCODE -ne 0) { $deleted = @(); $unchecked += 'soft-deleted Face accounts (az cognitiveservices account list-deleted failed)' }
foreach ($line in @($deleted)) {
    if (-not $line) { continue }
    $name, $id = $line -split "`t", 2
    if ($id -notmatch '/resourceGroups/([^/]+)/') { continue }
    $delRg = $Matches[1]
    if ($delRg.ToLowerInvariant() -ne $rg.ToLowerInvariant()) { continue }
    if ($expected -and $name -ne $expected) { continue }
    if (-not $expected -and ($suffix -or -not $name.StartsWith($facePrefix))) { continue }
    Stop-Preflight "a soft-deleted Face account '$name' is waiting in resource group $delRg ($location)." @(
        'Creating the account again would fail with FlagMustBeSetForRestore. It still holds the enrolled',
        'persons (biometric templates) until it is purged, so purge it (needs Contributor on the group):',
        "az cognitiveservices account purge --location $location --resource-group $delRg --name $name",
        'Or deploy under a new name and let Azure purge the old account after its 48-hour retention:',
        "azd env set FACE_NAME_SUFFIX 2    (see $docs, `"Soft-deleted Face account`")",
        'Next time, tear down with: azd down --purge')
}

Write-Host @'

preflight: two steps no script can take (docs/deployment.md "First deployment"):
  - Responsible AI terms: a subscription that never created a Face (Cognitive Services) resource
    in the Azure portal fails with ResourceKindRequireAcceptTerms; ARM has no property to accept
    them. Create one Face resource in the portal once, accepting the notice (then delete and purge it):
    https://aka.ms/csrainotice
  - Limited Access: identification, verification and LargePersonGroup calls answer
    403 UnsupportedFeature until Microsoft approves the subscription. Apply with the Face
    Recognition intake form: https://aka.ms/facerecognition
    https://learn.microsoft.com/legal/cognitive-services/computer-vision/limited-access-identity
'@

if ($unchecked.Count -gt 0) {
    [Console]::Error.WriteLine("`npreflight: could not check (az failed; see it by re-running the command without 2>`$null):")
    foreach ($u in $unchecked) { [Console]::Error.WriteLine("    $u") }
    [Console]::Error.WriteLine("  If provisioning then fails, see $docs, `"Troubleshooting`".")
}

if ($script:problems -gt 0) {
    [Console]::Error.WriteLine("`npreflight: $($script:problems) problem(s) found; nothing was created. Fix them and run azd up again.")
    exit 1
}
Write-Host 'preflight: OK'
