#!/usr/bin/env bash
# azd preprovision hook (azure.yaml): check, before anything is created, what would make the first
# `azd up` fail half-way or mislead, and stop with a message that says what to do.
#
#   1. you are signed in to az, and AZURE_LOCATION is set;
#   2. AUTH_CLIENT_ID (the front end's Entra app registration) is set: without it the template
#      would deploy an API nobody can sign in to (docs/deployment.md "Sign-in");
#   3. the resource providers this template uses are registered;
#   4. the region offers Flex Consumption and the Face API;
#   5. the region offers zone-redundant storage when STORAGE_SKU is Standard_ZRS (the default);
#   6. no soft-deleted Face account of the same name is waiting in the resource group (the next
#      deployment would fail with FlagMustBeSetForRestore).
#
# Then it prints the two steps no tool can take for you: the Responsible AI terms and the Face
# Limited Access approval. It never changes anything in Azure: it only reads, and prints the
# commands to run (register, purge, azd env set). tests/test_preflight.py runs every branch
# against a fake `az` (tests/fixtures/fake_az). scripts/preflight.ps1 is the same for Windows.
#
# Skip it (not recommended) with PREFLIGHT_SKIP=1.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail

if [[ "${PREFLIGHT_SKIP:-}" == "1" ]]; then
  echo "preflight: skipped (PREFLIGHT_SKIP=1)"
  exit 0
fi

DOCS="docs/deployment.md"
PROVIDERS=(
  Microsoft.Web
  Microsoft.Storage
  Microsoft.CognitiveServices
  Microsoft.ServiceBus
  Microsoft.EventGrid
  Microsoft.OperationalInsights
  Microsoft.Insights
  Microsoft.ManagedIdentity
)
FACE_PREFIX="face-"   # infra/abbreviations.json cognitiveServicesFace

problems=0
unchecked=()
# A read that fails (no permission, throttling, a CLI too old for a command) must not pass as
# "nothing found": it is reported as unchecked at the end.
unchecked() { unchecked+=("$1"); }
stop() {
  # stop "what is wrong" "what to do" ...
  problems=$((problems + 1))
  printf '\npreflight: STOP: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
}

# --- 1. az and the target ---------------------------------------------------------------------
if ! command -v az >/dev/null 2>&1; then
  echo "preflight: STOP: the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli" >&2
  exit 1
fi
if ! signed_in_sub="$(az account show --query id -o tsv 2>/dev/null)" || [[ -z "$signed_in_sub" ]]; then
  echo "preflight: STOP: az is not signed in. Run: az login (and azd auth login), then azd up again." >&2
  exit 1
fi
SUB="${AZURE_SUBSCRIPTION_ID:-$signed_in_sub}"
LOCATION="$(printf '%s' "${AZURE_LOCATION:-}" | tr '[:upper:]' '[:lower:]' | tr -d ' ')"
ENV_NAME="${AZURE_ENV_NAME:-}"
RG="${AZURE_RESOURCE_GROUP:-rg-${ENV_NAME}}"
if [[ -z "$LOCATION" ]]; then
  echo "preflight: STOP: AZURE_LOCATION is not set. Run: azd env set AZURE_LOCATION <region>" >&2
  exit 1
fi
echo "preflight: subscription $SUB, region $LOCATION, resource group $RG"

# --- 2. sign-in app registration -----------------------------------------------------------------
guid_re='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
if [[ -z "${AUTH_CLIENT_ID:-}" ]]; then
  stop "AUTH_CLIENT_ID is not set: App Service Authentication needs the front end's Entra app registration." \
    "Create it (redirect URI https://<app>/.auth/login/aad/callback, ID tokens, app role FaceEnrollment.Admin):" \
    "see $DOCS, section \"Sign-in: the app registration\". Then: azd env set AUTH_CLIENT_ID <application (client) id>"
elif ! [[ "${AUTH_CLIENT_ID}" =~ $guid_re ]]; then
  stop "AUTH_CLIENT_ID '${AUTH_CLIENT_ID}' is not an application (client) id (a GUID)." \
    "Copy the 'Application (client) ID' from the app registration's Overview page: azd env set AUTH_CLIENT_ID <guid>"
fi

# --- 3. resource providers -----------------------------------------------------------------------
unregistered=()
for ns in "${PROVIDERS[@]}"; do
  state="$(az provider show --namespace "$ns" --query registrationState -o tsv 2>/dev/null)" || state=""
  if [[ "$state" != "Registered" ]]; then
    unregistered+=("$ns (${state:-unknown})")
  fi
done
if (( ${#unregistered[@]} )); then
  cmds=()
  for entry in "${unregistered[@]}"; do cmds+=("az provider register --namespace ${entry%% *} --wait"); done
  stop "resource providers not registered in subscription $SUB: ${unregistered[*]}" \
    "Registering needs the */register/action permission (Contributor or Owner on the subscription). Run:" \
    "${cmds[@]}"
fi

# --- 4. the region offers Flex Consumption and Face ----------------------------------------------
flex="$(az functionapp list-flexconsumption-locations --query "length(@[?name=='${LOCATION}'])" -o tsv 2>/dev/null)" \
  || unchecked "Flex Consumption in $LOCATION (az functionapp list-flexconsumption-locations failed)"
if [[ "$flex" == "0" ]]; then
  stop "region $LOCATION does not offer the Flex Consumption plan." \
    "List the regions that do: az functionapp list-flexconsumption-locations -o table" \
    "Then: azd env set AZURE_LOCATION <region> (it must offer the Face API too)."
fi
face_skus="$(az cognitiveservices account list-skus --kind Face --location "$LOCATION" --query "length(@)" -o tsv 2>/dev/null)" \
  || unchecked "Face in $LOCATION (az cognitiveservices account list-skus failed)"
if [[ "$face_skus" == "0" ]]; then
  stop "region $LOCATION does not offer the Face API (kind Face) to this subscription." \
    "Choose a region that offers both Face and Flex Consumption: azd env set AZURE_LOCATION <region>"
fi

# --- 5. zone-redundant storage -------------------------------------------------------------------
STORAGE_SKU="${STORAGE_SKU:-Standard_ZRS}"
if [[ "$STORAGE_SKU" == "Standard_ZRS" ]]; then
  zrs="$(az rest --method get \
    --url "/subscriptions/${SUB}/providers/Microsoft.Storage/skus?api-version=2023-05-01" \
    --query "length(value[?name=='Standard_ZRS' && kind=='StorageV2' && contains(locations, '${LOCATION}') && length(restrictions[?type=='Location' && contains(values, '${LOCATION}')]) == \`0\`])" \
    -o tsv 2>/dev/null)" || { zrs=""; unchecked "zone-redundant storage in $LOCATION (az rest .../Microsoft.Storage/skus failed)"; }
  if [[ "$zrs" == "0" ]]; then
    stop "region $LOCATION does not offer zone-redundant storage (Standard_ZRS) to this subscription." \
      "Either keep the region with locally redundant storage (three copies in one datacenter; still no copy" \
      "leaves the region): azd env set STORAGE_SKU Standard_LRS" \
      "or choose a region with availability zones: azd env set AZURE_LOCATION <region>"
  fi
fi

# --- 6. soft-deleted Face account ----------------------------------------------------------------
# Cognitive Services accounts are soft-deleted (kept for 48 hours) by `azd down` without --purge.
# A new account with the same name in the same resource group then fails with
# FlagMustBeSetForRestore. The expected name is face-<RESOURCE_TOKEN><FACE_NAME_SUFFIX>; azd keeps
# RESOURCE_TOKEN (an output of infra/main.bicep) in the environment after `azd down`.
suffix="$(printf '%s' "${FACE_NAME_SUFFIX:-}" | tr '[:upper:]' '[:lower:]')"
expected=""
if [[ -n "${RESOURCE_TOKEN:-}" ]]; then
  expected="${FACE_PREFIX}${RESOURCE_TOKEN}${suffix}"
fi
deleted="$(az cognitiveservices account list-deleted \
  --query "[?kind=='Face' && location=='${LOCATION}'].[name, id]" -o tsv 2>/dev/null)" \
  || { deleted=""; unchecked "soft-deleted Face accounts (az cognitiveservices account list-deleted failed)"; }
while IFS=$'\t' read -r name id; do
  [[ -z "${name:-}" ]] && continue
  del_rg="$(printf '%s' "$id" | sed -n 's#.*/resourceGroups/\([^/]*\)/.*#\1#p')"
  [[ "$(printf '%s' "$del_rg" | tr '[:upper:]' '[:lower:]')" == "$(printf '%s' "$RG" | tr '[:upper:]' '[:lower:]')" ]] || continue
  if [[ -n "$expected" && "$name" != "$expected" ]]; then continue; fi
  if [[ -z "$expected" && ( -n "$suffix" || "$name" != "$FACE_PREFIX"* ) ]]; then continue; fi
  stop "a soft-deleted Face account '$name' is waiting in resource group $del_rg ($LOCATION)." \
    "Creating the account again would fail with FlagMustBeSetForRestore. It still holds the enrolled" \
    "persons (biometric templates) until it is purged, so purge it (needs Contributor on the group):" \
    "az cognitiveservices account purge --location $LOCATION --resource-group $del_rg --name $name" \
    "Or deploy under a new name and let Azure purge the old account after its 48-hour retention:" \
    "azd env set FACE_NAME_SUFFIX 2    (see $DOCS, \"Soft-deleted Face account\")" \
    "Next time, tear down with: azd down --purge"
done <<<"$deleted"

# --- what only a person can do -------------------------------------------------------------------
cat <<'EOF'

preflight: two steps no script can take (docs/deployment.md "First deployment"):
  - Responsible AI terms: a subscription that never created a Face (Cognitive Services) resource
    in the Azure portal fails with ResourceKindRequireAcceptTerms; ARM has no property to accept
    them. Create one Face resource in the portal once, accepting the notice (then delete and purge it):
    https://aka.ms/csrainotice
  - Limited Access: identification, verification and LargePersonGroup calls answer
    403 UnsupportedFeature until Microsoft approves the subscription. Apply with the Face
    Recognition intake form: https://aka.ms/facerecognition
    https://learn.microsoft.com/legal/cognitive-services/computer-vision/limited-access-identity
EOF

if (( ${#unchecked[@]} )); then
  printf '\npreflight: could not check (az failed; see it by re-running the command without 2>/dev/null):\n' >&2
  printf '    %s\n' "${unchecked[@]}" >&2
  echo "  If provisioning then fails, see $DOCS, \"Troubleshooting\"." >&2
fi

if (( problems )); then
  printf '\npreflight: %d problem(s) found; nothing was created. Fix them and run azd up again.\n' "$problems" >&2
  exit 1
fi
echo "preflight: OK"
