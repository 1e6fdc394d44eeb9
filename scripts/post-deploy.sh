#!/usr/bin/env bash
# azd postdeploy hook (azure.yaml): subscribe the `enroll` function to BlobCreated events of the
# photo storage account's `uploads` container.
#
# Why here and not in Bicep: the webhook URL carries the Functions host's `blobs_extension`
# system key, which only exists once the code is deployed and the host has started (the same
# approach as the Azure-Samples Flex Consumption azd templates).
#
# The event subscription is written with one idempotent ARM PUT (az rest) so that every setting
# is explicit: webhook endpoint, BlobCreated filter on /blobServices/default/containers/uploads/,
# retry policy, and dead-lettering to the `eventgrid-deadletter` container with the system
# topic's own managed identity (deadLetterWithResourceIdentity; the role is granted in
# infra/app/rbac.bicep). Re-running it updates the subscription in place.
#
# Needs: az (logged in, Contributor or EventGrid Contributor on the resource group) and the azd
# environment values (azd exports them to hooks; otherwise they are read with `azd env get-values`).
# azd may run hooks with `sh`: make sure this runs under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

if [[ -z "${AZURE_FUNCTION_APP_NAME:-}" ]] && command -v azd >/dev/null 2>&1; then
  # azd prints KEY="value" lines (our own environment's outputs).
  eval "$(azd env get-values | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=/export \1=/p')"
fi

: "${AZURE_RESOURCE_GROUP:?azd output AZURE_RESOURCE_GROUP missing (run azd provision first)}"
: "${AZURE_FUNCTION_APP_NAME:?azd output AZURE_FUNCTION_APP_NAME missing}"
: "${PHOTOS_SYSTEM_TOPIC_NAME:?azd output PHOTOS_SYSTEM_TOPIC_NAME missing}"
: "${PHOTO_STORAGE_ACCOUNT_ID:?azd output PHOTO_STORAGE_ACCOUNT_ID missing}"
UPLOADS_CONTAINER_NAME="${UPLOADS_CONTAINER_NAME:-uploads}"
EVENTGRID_DEADLETTER_CONTAINER_NAME="${EVENTGRID_DEADLETTER_CONTAINER_NAME:-eventgrid-deadletter}"
ENROLL_FUNCTION_NAME="${ENROLL_FUNCTION_NAME:-enroll}"
SUBSCRIPTION_NAME="${EVENTGRID_SUBSCRIPTION_NAME:-enrolluploads}"   # alphanumeric only
API_VERSION="2025-02-15"
KEY_WAIT_SECONDS="${KEY_WAIT_SECONDS:-300}"

rg="$AZURE_RESOURCE_GROUP"
app="$AZURE_FUNCTION_APP_NAME"

# Lock the WORM policy of the consent ledger's anchors (infra/app/storage.bicep). ARM creates the
# time-based retention policy Unlocked; the lock is an action, not a property, so it cannot be in
# Bicep. Once Locked it can only be extended: nobody, admins included, can shorten or delete it.
# Idempotent: a policy that is already Locked is left alone. scripts/check_infra.py fails the build
# if this step disappears.
LEDGER_ANCHORS_CONTAINER_NAME="${LEDGER_ANCHORS_CONTAINER_NAME:-ledger-anchors}"
photo_account="${PHOTO_STORAGE_ACCOUNT_ID##*/}"
worm_state="$(az storage container immutability-policy show -g "$rg" --account-name "$photo_account" \
  -c "$LEDGER_ANCHORS_CONTAINER_NAME" --query state -o tsv)"
if [[ "$worm_state" != "Locked" ]]; then
  worm_etag="$(az storage container immutability-policy show -g "$rg" --account-name "$photo_account" \
    -c "$LEDGER_ANCHORS_CONTAINER_NAME" --query etag -o tsv)"
  az storage container immutability-policy lock -g "$rg" --account-name "$photo_account" \
    -c "$LEDGER_ANCHORS_CONTAINER_NAME" --if-match "$worm_etag" --output none
  echo "post-deploy: WORM policy of ${LEDGER_ANCHORS_CONTAINER_NAME} locked"
fi

host="$(az functionapp show -g "$rg" -n "$app" --query defaultHostName -o tsv)"
# The photo account's CORS rule allows the origin infra/main.bicep computes (functionAppOrigin):
# say so loudly if the platform gave the app another host name (browser uploads would fail CORS).
if [[ "$host" != "${app}.azurewebsites.net" ]]; then
  echo "post-deploy: WARNING: the app answers on https://${host}, but the photo account's CORS rule allows" >&2
  echo "  https://${app}.azurewebsites.net (infra/main.bicep functionAppOrigin). Browser uploads will be refused" >&2
  echo "  until they match: see docs/deployment.md, troubleshooting." >&2
fi
echo "post-deploy: waiting for the blobs_extension system key of $app ..."
key=""
deadline=$((SECONDS + KEY_WAIT_SECONDS))
while [[ -z "$key" ]]; do
  key="$(az functionapp keys list -g "$rg" -n "$app" --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
  if [[ -n "$key" ]]; then break; fi
  if (( SECONDS >= deadline )); then
    echo "post-deploy: no blobs_extension key after ${KEY_WAIT_SECONDS}s. Is the Event Grid blob trigger" >&2
    echo "  deployed and did the host start? Re-run: scripts/post-deploy.sh" >&2
    exit 1
  fi
  # The key is created when the host starts and loads the blob extension: nudge it awake.
  curl -fsS -o /dev/null --max-time 30 "https://${host}/" >/dev/null 2>&1 || true
  sleep 15
done

endpoint="https://${host}/runtime/webhooks/blobs?functionName=Host.Functions.${ENROLL_FUNCTION_NAME}&code=${key}"
topic_id="$(az eventgrid system-topic show -g "$rg" -n "$PHOTOS_SYSTEM_TOPIC_NAME" --query id -o tsv)"

# The body holds the webhook key: keep it out of argv and logs, in a private temp file.
umask 077
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
cat >"$body" <<JSON
{
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": "${endpoint}",
        "maxEventsPerBatch": 1,
        "preferredBatchSizeInKilobytes": 64
      }
    },
    "filter": {
      "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
      "subjectBeginsWith": "/blobServices/default/containers/${UPLOADS_CONTAINER_NAME}/",
      "isSubjectCaseSensitive": false
    },
    "eventDeliverySchema": "EventGridSchema",
    "retryPolicy": {
      "maxDeliveryAttempts": 30,
      "eventTimeToLiveInMinutes": 1440
    },
    "deadLetterWithResourceIdentity": {
      "identity": { "type": "SystemAssigned" },
      "deadLetterDestination": {
        "endpointType": "StorageBlob",
        "properties": {
          "resourceId": "${PHOTO_STORAGE_ACCOUNT_ID}",
          "blobContainerName": "${EVENTGRID_DEADLETTER_CONTAINER_NAME}"
        }
      }
    }
  }
}
JSON

url="${topic_id}/eventSubscriptions/${SUBSCRIPTION_NAME}?api-version=${API_VERSION}"
echo "post-deploy: creating/updating event subscription $SUBSCRIPTION_NAME on $PHOTOS_SYSTEM_TOPIC_NAME"
az rest --method put --url "$url" --body "@$body" --output none

# Creation runs the webhook validation handshake against the function; wait for the result.
state=""
for _ in $(seq 1 40); do
  state="$(az rest --method get --url "$url" --query properties.provisioningState -o tsv 2>/dev/null || true)"
  case "$state" in
    Succeeded) echo "post-deploy: event subscription ready (BlobCreated in ${UPLOADS_CONTAINER_NAME}/ -> ${ENROLL_FUNCTION_NAME})"; exit 0 ;;
    Failed|Canceled) break ;;
  esac
  sleep 5
done
echo "post-deploy: event subscription provisioning state: ${state:-unknown}" >&2
echo "  Check that the function app answers the Event Grid validation handshake, then re-run this script." >&2
exit 1
