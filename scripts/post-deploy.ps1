# azd postdeploy hook (Windows): same as scripts/post-deploy.sh, see the comments there.
# Subscribes the `enroll` function (blobs-extension webhook, needs the blobs_extension system key
# that exists only after code deployment) to BlobCreated in the photo account's uploads container,
# with retry policy and dead-lettering through the system topic's managed identity.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values)) {
        if ($line -match '^([A-Za-z_][A-Za-z0-9_]*)="?(.*?)"?$') {
            Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
        }
    }
}

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'PHOTOS_SYSTEM_TOPIC_NAME', 'PHOTO_STORAGE_ACCOUNT_ID') {
    if (-not (Get-Item "env:$name" -ErrorAction SilentlyContinue)) { throw "azd output $name missing (run azd provision first)" }
}
$rg = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_APP_NAME
$uploads = if ($env:UPLOADS_CONTAINER_NAME) { $env:UPLOADS_CONTAINER_NAME } else { 'uploads' }
$deadLetter = if ($env:EVENTGRID_DEADLETTER_CONTAINER_NAME) { $env:EVENTGRID_DEADLETTER_CONTAINER_NAME } else { 'eventgrid-deadletter' }
$functionName = if ($env:ENROLL_FUNCTION_NAME) { $env:ENROLL_FUNCTION_NAME } else { 'enroll' }
$subscriptionName = if ($env:EVENTGRID_SUBSCRIPTION_NAME) { $env:EVENTGRID_SUBSCRIPTION_NAME } else { 'enrolluploads' }
$apiVersion = '2025-02-15'
$waitSeconds = if ($env:KEY_WAIT_SECONDS) { [int]$env:KEY_WAIT_SECONDS } else { 300 }

# Lock the WORM policy of the consent ledger's anchors (see scripts/post-deploy.sh).
$anchors = if ($env:LEDGER_ANCHORS_CONTAINER_NAME) { $env:LEDGER_ANCHORS_CONTAINER_NAME } else { 'ledger-anchors' }
$photoAccount = ($env:PHOTO_STORAGE_ACCOUNT_ID -split '/')[-1]
$wormState = az storage container immutability-policy show -g $rg --account-name $photoAccount -c $anchors --query state -o tsv
if ($wormState -ne 'Locked') {
    $wormEtag = az storage container immutability-policy show -g $rg --account-name $photoAccount -c $anchors --query etag -o tsv
    az storage container immutability-policy lock -g $rg --account-name $photoAccount -c $anchors --if-match $wormEtag --output none
    if ($LASTEXITCODE -ne 0) { throw "could not lock the WORM policy of $anchors" }
    Write-Host "post-deploy: WORM policy of $anchors locked"
}

$hostName = az functionapp show -g $rg -n $app --query defaultHostName -o tsv
# The photo account's CORS rule allows the origin infra/main.bicep computes (functionAppOrigin).
if ($hostName -ne "$app.azurewebsites.net") {
    Write-Warning "post-deploy: the app answers on https://$hostName, but the photo account's CORS rule allows https://$app.azurewebsites.net (infra/main.bicep functionAppOrigin). Browser uploads will be refused until they match: see docs/deployment.md, troubleshooting."
}
Write-Host "post-deploy: waiting for the blobs_extension system key of $app ..."
$deadline = (Get-Date).AddSeconds($waitSeconds)
$key = ''
while (-not $key) {
    $key = az functionapp keys list -g $rg -n $app --query 'systemKeys.blobs_extension' -o tsv 2>$null
    if ($key) { break }
    if ((Get-Date) -gt $deadline) {
        throw "no blobs_extension key after $waitSeconds s. Is the Event Grid blob trigger deployed and did the host start? Re-run scripts/post-deploy.ps1"
    }
    try { Invoke-WebRequest -Uri "https://$hostName/" -UseBasicParsing -TimeoutSec 30 | Out-Null } catch { }
    Start-Sleep -Seconds 15
}

$endpoint = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$functionName&code=$key"
$topicId = az eventgrid system-topic show -g $rg -n $env:PHOTOS_SYSTEM_TOPIC_NAME --query id -o tsv

$body = @{
    properties = @{
        destination = @{
            endpointType = 'WebHook'
            properties   = @{ endpointUrl = $endpoint; maxEventsPerBatch = 1; preferredBatchSizeInKilobytes = 64 }
        }
        filter = @{
            includedEventTypes     = @('Microsoft.Storage.BlobCreated')
            subjectBeginsWith      = "/blobServices/default/containers/$uploads/"
            isSubjectCaseSensitive = $false
        }
        eventDeliverySchema = 'EventGridSchema'
        retryPolicy = @{ maxDeliveryAttempts = 30; eventTimeToLiveInMinutes = 1440 }
        deadLetterWithResourceIdentity = @{
            identity              = @{ type = 'SystemAssigned' }
            deadLetterDestination = @{
                endpointType = 'StorageBlob'
                properties   = @{ resourceId = $env:PHOTO_STORAGE_ACCOUNT_ID; blobContainerName = $deadLetter }
            }
        }
    }
} | ConvertTo-Json -Depth 10

# The body holds the webhook key: keep it out of argv and logs.
$bodyFile = New-TemporaryFile
try {
    Set-Content -Path $bodyFile -Value $body -Encoding utf8
    $url = "$topicId/eventSubscriptions/${subscriptionName}?api-version=$apiVersion"
    Write-Host "post-deploy: creating/updating event subscription $subscriptionName on $($env:PHOTOS_SYSTEM_TOPIC_NAME)"
    az rest --method put --url $url --body "@$bodyFile" --output none
    if ($LASTEXITCODE -ne 0) { throw 'az rest PUT of the event subscription failed' }
} finally {
    Remove-Item -Path $bodyFile -Force -ErrorAction SilentlyContinue
}

$state = ''
for ($i = 0; $i -lt 40; $i++) {
    $state = az rest --method get --url $url --query properties.provisioningState -o tsv 2>$null
    if ($state -eq 'Succeeded') {
        Write-Host "post-deploy: event subscription ready (BlobCreated in $uploads/ -> $functionName)"
        exit 0
    }
    if ($state -in @('Failed', 'Canceled')) { break }
    Start-Sleep -Seconds 5
}
throw "event subscription provisioning state: $state. Check that the function app answers the Event Grid validation handshake, then re-run."
