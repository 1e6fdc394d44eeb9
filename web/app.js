// The reference enrollment front end. Plain ES module, no build step, no dependencies.
//
// Identity: App Service Authentication's session cookie (same origin as the API); no token is ever
// handled here. Photos: kept only in this page's memory until uploaded straight to the SAS URLs,
// then dropped. Sign-out (by the person or after inactivity) stops the camera, drops every photo
// and object URL, ends the session and lands on a page that clears this origin's cache and storage.
import { applyTexts, loadConfig, loadTexts, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const CLIENT_ID = "reference-web/1";

const state = {
  config: null,
  me: null,            // { name, mfa }
  terms: null,
  status: null,
  storePhotos: null,   // the answer on "Keep my photos?"
  photos: [],          // { blob, url } — in memory only
  stream: null,        // the camera's MediaStream while it is on
  guideTimer: null,
  idleTimer: null,
  idleWarnTimer: null,
  idleCountdown: null,
  signingOut: false,
  keptReturn: null,    // the "View photo" button to return focus to
};

// ---------------------------------------------------------------------------------------------
// Screens and announcements

function show(id, { focus = true } = {}) {
  for (const section of document.querySelectorAll("[data-screen]")) section.hidden = section.id !== `screen-${id}`;
  const screen = $(`screen-${id}`);
  const heading = screen.querySelector("h1");
  const step = screen.dataset.step;
  $("progress").hidden = !step;
  $("progress").textContent = step ? t("step", { n: step }) : "";
  document.title = `${heading.textContent} – ${t("app.title")}`;
  if (id !== "capture") stopCamera();
  // Each step moves focus to its heading, so keyboard and screen reader users start at the top.
  if (focus) heading.focus();
  window.scrollTo(0, 0);
}

function alertText(message) {
  $("alert").textContent = message || "";
}

function announce(message) {
  $("announce").textContent = "";
  // A fresh text node each time so repeated messages are announced again.
  window.setTimeout(() => { $("announce").textContent = message; }, 50);
}

function clearChildren(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

function li(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

// ---------------------------------------------------------------------------------------------
// The API (same origin; the session cookie is the identity)

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(`/api/${path}`, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-Client-Id": CLIENT_ID },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, t("error.network"));
  }
  const text = await response.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!response.ok) {
    const error = doc && doc.error ? doc.error : {};
    let message = error.message || t("error.generic");
    if (response.status === 401) message = t("error.signIn");
    if (error.errorId) message = t("error.withRef", { message, ref: error.errorId });
    throw new ApiError(response.status, message);
  }
  return doc;
}

async function guarded(action) {
  alertText("");
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetUser();
      show("signin");
    }
    alertText(error instanceof ApiError ? error.message : t("error.generic"));
  }
}

// ---------------------------------------------------------------------------------------------
// Who is signed in (App Service Authentication's /.auth/me)

async function whoAmI() {
  const response = await fetch("/.auth/me", { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) return null;
  if (!response.ok) {
    // /.auth/me needs App Service's token store; without it, ask the API whether we are signed in.
    const probe = await fetch("/api/enrollment", { credentials: "same-origin", cache: "no-store" });
    return probe.ok ? { name: "", mfa: true } : null;
  }
  const doc = await response.json();
  const entry = Array.isArray(doc) ? doc[0] : null;
  if (!entry) return null;
  const claims = entry.user_claims || [];
  const values = (typ) => claims.filter((c) => c.typ === typ || c.typ.endsWith(`/${typ}`)).map((c) => c.val);
  const amr = values("amr").concat(values("authnmethodsreferences")).map((v) => v.toLowerCase());
  return { name: values("name")[0] || entry.user_id || "", mfa: amr.includes("mfa") };
}

function forgetUser() {
  state.me = null;
  $("who").hidden = true;
  $("who-name").textContent = "";
  stopIdleTimer();
}

// ---------------------------------------------------------------------------------------------
// Kiosk: nothing of the user stays after sign-out; inactivity signs out

function dropPhotos() {
  for (const photo of state.photos) URL.revokeObjectURL(photo.url);
  state.photos = [];
  clearChildren($("photos"));
  $("file-input").value = "";
}

function wipePage() {
  stopCamera();
  dropPhotos();
  state.status = null;
  state.terms = null;
  state.storePhotos = null;
  closeKeptPhoto();
  for (const id of ["about-purposes", "about-retention", "upload-list", "result-list", "mydata-photos", "mydata-kept", "mydata-receipts",
    "withdrawn-receipt-detail"]) clearChildren($(id));
  for (const id of ["who-name", "mydata-status", "mydata-consent", "mydata-renewal", "mydata-keep", "withdrawn-receipt", "alert"]) $(id).textContent = "";
}

async function signOut() {
  if (state.signingOut) return;
  state.signingOut = true;
  stopIdleTimer();
  wipePage();
  // The signed-out page's Clear-Site-Data does this too; done here as well, so nothing depends on
  // that page being reachable (App Service Authentication may refuse it without a session).
  try { sessionStorage.clear(); localStorage.clear(); } catch { /* storage may be disabled */ }
  try {
    if (window.caches) for (const key of await window.caches.keys()) await window.caches.delete(key);
  } catch { /* Cache Storage unavailable: nothing stored there */ }
  const after = new URL("signed-out.html", window.location.href).pathname + window.location.search;
  window.location.replace(`${state.config.signOutPath}?post_logout_redirect_uri=${encodeURIComponent(after)}`);
}

function idleSeconds() {
  let seconds = Number(state.config.idleSignOutSeconds) || 120;
  // A kiosk operator may shorten the timeout in the page address (?idle=60), never lengthen it.
  const asked = Number(new URLSearchParams(window.location.search).get("idle"));
  if (Number.isFinite(asked) && asked > 0) seconds = Math.min(seconds, asked);
  return seconds;
}

function stopIdleTimer() {
  window.clearTimeout(state.idleTimer);
  window.clearTimeout(state.idleWarnTimer);
  window.clearInterval(state.idleCountdown);
  $("idle").hidden = true;
}

function resetIdleTimer() {
  if (!state.me || state.signingOut) return;
  const wasWarning = !$("idle").hidden;
  stopIdleTimer();
  const total = idleSeconds();
  const warning = Math.min(Number(state.config.idleWarningSeconds) || 30, Math.floor(total / 2));
  state.idleWarnTimer = window.setTimeout(() => showIdleWarning(warning), (total - warning) * 1000);
  state.idleTimer = window.setTimeout(signOut, total * 1000);
  if (wasWarning) document.querySelector("[data-screen]:not([hidden]) h1").focus();
}

function showIdleWarning(seconds) {
  let left = seconds;
  $("idle-body").textContent = t("idle.body", { seconds: left });
  $("idle").hidden = false;
  $("idle-stay").focus();
  state.idleCountdown = window.setInterval(() => {
    left = Math.max(0, left - 1);
    $("idle-body").textContent = t("idle.body", { seconds: left });
  }, 1000);
}

// ---------------------------------------------------------------------------------------------
// Camera capture with live framing guidance

async function startCamera() {
  alertText("");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false,
    });
  } catch {
    state.stream = null;
    alertText(t("capture.camera.unavailable"));
    $("file-input").focus();
    return;
  }
  const video = $("video");
  video.srcObject = state.stream;
  await video.play().catch(() => {});
  $("camera").hidden = false;
  $("camera-start").hidden = true;
  $("guidance").textContent = t("capture.guide.start");
  state.guideTimer = window.setInterval(guide, 1200);
  $("camera-shoot").focus();
}

function stopCamera() {
  window.clearInterval(state.guideTimer);
  state.guideTimer = null;
  if (state.stream) {
    for (const track of state.stream.getTracks()) track.stop();
    state.stream = null;
  }
  const video = $("video");
  if (video) {
    video.pause();
    video.srcObject = null;
  }
  if ($("camera")) $("camera").hidden = true;
  if ($("camera-start")) $("camera-start").hidden = false;
}

let lastGuidance = "";

async function guide() {
  const video = $("video");
  if (!state.stream || video.videoWidth === 0) return;
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 48;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  const luma = sum / (data.length / 4);
  let message = luma < 60 ? "capture.guide.dark" : luma > 205 ? "capture.guide.bright" : "capture.guide.ok";
  if (message === "capture.guide.ok" && "FaceDetector" in window) {
    // Where the browser has a face detector (Shape Detection API), guide framing too.
    try {
      const faces = await new window.FaceDetector({ fastMode: true, maxDetectedFaces: 1 }).detect(video);
      if (!faces.length) message = "capture.guide.noface";
      else {
        const box = faces[0].boundingBox;
        const share = box.width / video.videoWidth;
        const cx = (box.x + box.width / 2) / video.videoWidth;
        if (share < 0.2) message = "capture.guide.closer";
        else if (share > 0.6) message = "capture.guide.further";
        else if (Math.abs(cx - 0.5) > 0.15) message = "capture.guide.centre";
      }
    } catch { /* no detector after all: light guidance only */ }
  }
  // Only changes are written, so a screen reader is not flooded with the same sentence.
  if (message !== lastGuidance) {
    lastGuidance = message;
    $("guidance").textContent = t(message);
  }
}

async function takePhoto() {
  const video = $("video");
  if (!state.stream || video.videoWidth === 0) return;
  if (state.photos.length >= state.config.maxPhotos) {
    alertText(t("capture.full"));
    return;
  }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  // canvas.toBlob writes a JPEG without any metadata: nothing but the pixels leaves the device.
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  canvas.width = 0;
  if (blob) addPhoto(blob);
}

function addPhoto(blob) {
  state.photos.push({ blob, url: URL.createObjectURL(blob) });
  renderPhotos();
  announce(t("capture.added", { n: state.photos.length }));
}

function addFiles(files) {
  alertText("");
  const problems = [];
  for (const file of files) {
    if (state.photos.length >= state.config.maxPhotos) {
      problems.push(t("capture.full"));
      break;
    }
    if (!["image/jpeg", "image/png"].includes(file.type)) problems.push(t("capture.badType", { name: file.name }));
    else if (file.size > state.config.maxPhotoBytes) problems.push(t("capture.tooBig", { name: file.name }));
    else addPhoto(file);
  }
  $("file-input").value = "";
  if (problems.length) alertText(problems.join(" "));
}

function renderPhotos() {
  const list = $("photos");
  clearChildren(list);
  state.photos.forEach((photo, index) => {
    const item = document.createElement("li");
    const img = document.createElement("img");
    img.src = photo.url;
    img.alt = t("capture.photo.alt", { n: index + 1 });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = t("capture.photo.remove", { n: index + 1 });
    remove.addEventListener("click", () => removePhoto(index));
    item.append(img, remove);
    list.append(item);
  });
  $("photos-heading").textContent = t("capture.list.heading", { count: state.photos.length });
  $("photos-empty").hidden = state.photos.length > 0;
  $("capture-error").textContent = "";
}

function removePhoto(index) {
  const [photo] = state.photos.splice(index, 1);
  if (photo) URL.revokeObjectURL(photo.url);
  renderPhotos();
  announce(t("capture.removed", { count: state.photos.length }));
  const buttons = $("photos").querySelectorAll("button");
  (buttons[Math.min(index, buttons.length - 1)] || $("upload")).focus();
}

// ---------------------------------------------------------------------------------------------
// Upload straight to the SAS URLs, with progress, then wait for the verdict

function put(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("x-ms-blob-type", "BlockBlob");
    xhr.setRequestHeader("Content-Type", blob.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(Math.round((e.loaded / e.total) * 100)); };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(String(xhr.status))));
    xhr.onerror = () => reject(new Error("network"));
    xhr.send(blob);
  });
}

async function upload() {
  if (!state.photos.length) {
    $("capture-error").textContent = t("capture.none");
    $("file-input").focus();
    return;
  }
  stopCamera();
  const photos = state.photos.slice();
  // Asked for before leaving the capture screen: a refusal (no MFA, no consent) is shown right there.
  const session = await api("POST", "enrollment/uploads", { count: photos.length });
  const list = $("upload-list");
  clearChildren(list);
  const bars = photos.map((_, index) => {
    const item = document.createElement("li");
    const label = document.createElement("label");
    const bar = document.createElement("progress");
    bar.id = `upload-${index + 1}`;
    bar.max = 100;
    bar.value = 0;
    label.htmlFor = bar.id;
    label.textContent = t("upload.photo", { n: index + 1 });
    item.append(label, bar);
    list.append(item);
    return bar;
  });
  $("upload-status").textContent = "";
  show("upload");
  const ids = session.uploads.map((u) => u.uploadId);
  for (const [index, slot] of session.uploads.entries()) {
    try {
      await put(slot.url, photos[index].blob, (pct) => { bars[index].value = pct; });
    } catch {
      // Back to the photos, still in memory, so the person can try again (a new session is made).
      show("capture");
      alertText(t("upload.failed", { n: index + 1 }));
      return;
    }
    bars[index].value = 100;
    announce(t("upload.done", { n: index + 1 }));
  }
  // The photos leave this page's memory as soon as they are uploaded.
  dropPhotos();
  $("upload-status").textContent = t("upload.checking");
  const status = await waitForVerdict(ids);
  showResult(status, ids);
}

async function waitForVerdict(ids) {
  const deadline = Date.now() + (Number(state.config.resultTimeoutSeconds) || 90) * 1000;
  let status = null;
  while (Date.now() < deadline && !state.signingOut) {
    status = await api("GET", "enrollment");
    const mine = status.photos.filter((p) => ids.includes(p.uploadId));
    if (mine.length === ids.length && !stillOpen(status, mine)) return status;
    await new Promise((resolve) => window.setTimeout(resolve, 500));
  }
  return status;
}

// No verdict yet: a photo not yet checked, or an accepted one that counts only once the group is
// trained with it (until then the status is "pending").
function stillOpen(status, mine) {
  return mine.some((p) => ["awaitingUpload", "processing"].includes(p.status))
    || (status.status === "pending" && mine.some((p) => p.status === "accepted"));
}

function showResult(status, ids) {
  state.status = status;
  const mine = ids.map((id) => status.photos.find((p) => p.uploadId === id) || { status: "processing", reasons: [] });
  const accepted = mine.filter((p) => p.status === "accepted").length;
  const open = stillOpen(status, mine);
  let key = "failed";
  if (open) key = "pending";
  else if (status.status === "enrolled" && accepted === mine.length) key = "enrolled";
  else if (status.status === "enrolled") key = "partial";
  $("result-title").textContent = t(`result.title.${key}`);
  $("result-body").textContent = key === "pending" ? t("upload.slow")
    : key === "failed" || key === "partial" ? t("result.body.failed") : t("result.body.enrolled");
  const list = $("result-list");
  clearChildren(list);
  mine.forEach((photo, index) => {
    const n = index + 1;
    if (photo.status === "accepted") list.append(li(t("result.photo.accepted", { n }), "accepted"));
    else if (photo.status === "rejected") {
      const item = li(t("result.photo.rejected", { n }), "rejected");
      const reasons = document.createElement("ul");
      // The API's reasons are already words a person can act on ("Move closer to the camera.").
      for (const reason of photo.reasons) reasons.append(li(reason));
      item.append(reasons);
      list.append(item);
    } else list.append(li(t("result.photo.other", { n, status: t(`photo.${photo.status}`) })));
  });
  show("result");
}

// ---------------------------------------------------------------------------------------------
// My data

function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(document.documentElement.lang, { dateStyle: "long", timeStyle: "short" });
}

function receiptDetail(receipt) {
  const list = document.createElement("ul");
  for (const entry of receipt.erased || []) list.append(li(t("receipt.erased", { kind: t(`kind.${entry.kind}`), count: entry.count })));
  if (receipt.verified) list.append(li(t("receipt.verified")));
  if ((receipt.retained || []).length) list.append(li(t("receipt.retained", { items: receipt.retained.join(", ") })));
  return list;
}

function closeKeptPhoto() {
  const img = $("mydata-kept-img");
  // Dropping the address drops the picture: the read link is short-lived and its reply is never cached.
  if (img) img.removeAttribute("src");
  if ($("mydata-kept-view")) $("mydata-kept-view").hidden = true;
}

async function viewKeptPhoto(photoId, n, button) {
  const link = await api("GET", `me/photos/${encodeURIComponent(photoId)}`);
  const img = $("mydata-kept-img");
  img.alt = t("mydata.kept.alt", { n });
  img.src = link.url;
  $("mydata-kept-view").hidden = false;
  state.keptReturn = button;
  $("mydata-kept-close").focus();
}

function renderKept(bundle) {
  const kept = $("mydata-kept");
  clearChildren(kept);
  closeKeptPhoto();
  const photos = bundle && bundle.keptPhotos ? bundle.keptPhotos.photos : [];
  if (!bundle) return;
  if (!photos.length) {
    kept.append(li(t("mydata.kept.none")));
    return;
  }
  photos.forEach((photo, index) => {
    const n = index + 1;
    const item = li(t("mydata.kept.item", { n, date: photo.keptAt ? formatDate(photo.keptAt) : "—" }));
    const view = document.createElement("button");
    view.type = "button";
    view.className = "secondary";
    view.textContent = t("mydata.kept.view", { n });
    view.addEventListener("click", () => guarded(() => viewKeptPhoto(photo.photoId, n, view)));
    item.append(" ", view);
    kept.append(item);
  });
}

function renderMyData(status, bundle = null) {
  state.status = status;
  $("mydata-status").textContent = t(`status.${status.status}`);
  $("mydata-message").textContent = status.message || "";
  $("mydata-message").hidden = !status.message;
  $("mydata-consent").textContent = status.consent
    ? t("mydata.consent.value", { version: status.consent.termsVersion, date: formatDate(status.consent.grantedAt) })
    : t("mydata.consent.none");
  const renewal = Boolean(status.renewalDue && status.consent && status.consent.expiresAt);
  $("mydata-renewal").textContent = renewal ? t("mydata.renewal", { date: formatDate(status.consent.expiresAt) }) : "";
  $("mydata-renewal").hidden = !renewal;
  $("mydata-renew").hidden = !renewal;
  $("mydata-keep").textContent = status.storePhotos ? t("mydata.keep.yes") : t("mydata.keep.no");
  renderKept(status.storePhotos ? bundle : null);
  $("mydata-keep-toggle").textContent = status.storePhotos ? t("mydata.keep.turnOff") : t("mydata.keep.turnOn");
  $("mydata-keep-toggle").hidden = !status.consent;
  const photos = $("mydata-photos");
  clearChildren(photos);
  if (!status.photos.length) photos.append(li(t("mydata.photos.none")));
  status.photos.forEach((p, index) => photos.append(li(t("result.photo.other", { n: index + 1, status: t(`photo.${p.status}`) }))));
  const receipts = $("mydata-receipts");
  clearChildren(receipts);
  // Receipts outlive the erasure: the access bundle lists every one, each with what it erased.
  const all = bundle ? bundle.receipts : [];
  for (const receipt of all) {
    const item = li(t("mydata.receipt", { id: receipt.receiptId, date: receipt.completedAt ? formatDate(receipt.completedAt) : "—" }));
    item.append(receiptDetail(receipt));
    receipts.append(item);
  }
  if (!all.length && status.receiptId) receipts.append(li(t("mydata.receipt", { id: status.receiptId, date: "—" })));
  if (!receipts.firstChild) receipts.append(li(t("mydata.receipts.none")));
  $("mydata-add").textContent = status.consent ? t("mydata.add") : t("mydata.enroll");
  $("mydata-withdraw").hidden = !status.consent && status.status === "none";
  $("withdraw-confirm").hidden = true;
}

async function accessBundle() {
  // Everything held about the caller (needs a multi-factor sign-in); without it the page still shows the status.
  try {
    return await api("GET", "me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return null;
    throw error;
  }
}

async function openMyData() {
  const status = await api("GET", "enrollment");
  renderMyData(status, await accessBundle());
  show("mydata");
}

async function withdraw() {
  $("withdraw-yes").disabled = true;
  announce(t("withdraw.working"));
  try {
    await api("DELETE", "enrollment");
    const deadline = Date.now() + 30000;
    let status = null;
    while (Date.now() < deadline) {
      status = await api("GET", "enrollment");
      if (status.status === "revoked" && status.receiptId) break;
      await new Promise((resolve) => window.setTimeout(resolve, 500));
    }
    state.status = status;
    $("withdrawn-receipt").textContent = status && status.receiptId
      ? t("withdrawn.receipt", { id: status.receiptId }) : t("withdrawn.pending");
    const detail = $("withdrawn-receipt-detail");
    clearChildren(detail);
    if (status && status.receiptId) {
      try {
        detail.append(receiptDetail(await api("GET", `me/receipts/${encodeURIComponent(status.receiptId)}`)));
      } catch { /* the number is enough; the details are on "My data" */ }
    }
    show("withdrawn");
  } finally {
    $("withdraw-yes").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The flow

async function consent(storePhotos) {
  await api("POST", "consent", { termsVersion: state.terms.termsVersion, accepted: true, storePhotos });
}

async function decline() {
  // Recorded in the consent ledger, as easily as a consent: the page stops asking.
  await api("POST", "consent", { termsVersion: state.terms.termsVersion, accepted: false });
  showDeclined();
}

function showDeclined() {
  $("declined-recorded").hidden = false;
  show("declined");
}

function retentionItem(kind) {
  const item = li(t("about.retention.kept", { what: kind.what, keptWhile: kind.keptWhile }));
  const limit = kind.maxDays !== undefined ? t("about.retention.limit", { n: kind.maxDays, meaning: kind.maxDaysMeaning || "" })
    : kind.maxMinutes !== undefined ? t("about.retention.limit", { n: kind.maxMinutes, meaning: kind.maxMinutesMeaning || "" })
      : kind.proofPeriodDays !== undefined ? t("about.retention.proof", { n: kind.proofPeriodDays, meaning: kind.proofPeriodMeaning || "" }) : "";
  if (limit) item.append(" ", limit);
  return item;
}

async function openAbout() {
  state.terms = state.terms || await api("GET", "consent/terms");
  const list = $("about-purposes");
  clearChildren(list);
  for (const purpose of state.terms.purposes) list.append(li(purpose));
  $("about-terms-title").textContent = state.terms.title || "";
  $("about-terms-text").textContent = state.terms.text || "";
  $("about-terms-version").textContent = t("about.terms.version", { version: state.terms.termsVersion });
  $("keep-terms").textContent = state.terms.storePhotosText || "";
  // For how long: from the published retention policy, the same file the purge enforces.
  const retention = $("about-retention");
  clearChildren(retention);
  $("about-retention-version").textContent = "";
  try {
    const policy = await api("GET", "privacy/policy");
    for (const kind of policy.kinds) retention.append(retentionItem(kind));
    $("about-retention-version").textContent = t("about.retention.version", { version: policy.version });
  } catch { /* the plain-language paragraph above still says it */ }
  show("about");
}

function openCapture() {
  dropPhotos();
  renderPhotos();
  show("capture");
}

function wire() {
  $("sign-out").addEventListener("click", signOut);
  $("declined-sign-out").addEventListener("click", signOut);
  $("idle-stay").addEventListener("click", resetIdleTimer);
  $("about-continue").addEventListener("click", () => show("consent"));
  $("consent-back").addEventListener("click", () => show("about"));
  $("consent-accept").addEventListener("click", () => {
    for (const input of document.querySelectorAll("input[name=keep]")) input.checked = false;
    $("keep-error").textContent = "";
    $("keep-fieldset").removeAttribute("aria-invalid");
    show("keep");
  });
  $("consent-decline").addEventListener("click", () => guarded(decline));
  $("declined-again").addEventListener("click", () => guarded(openAbout));
  $("keep-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const choice = document.querySelector("input[name=keep]:checked");
    if (!choice) {
      $("keep-error").textContent = t("keep.required");
      $("keep-fieldset").setAttribute("aria-invalid", "true");
      $("keep-yes").focus();
      return;
    }
    state.storePhotos = choice.value === "yes";
    guarded(async () => {
      await consent(state.storePhotos);
      openCapture();
    });
  });
  $("camera-start").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", () => { stopCamera(); $("camera-start").focus(); });
  $("camera-shoot").addEventListener("click", takePhoto);
  $("file-input").addEventListener("change", (event) => addFiles(Array.from(event.target.files || [])));
  $("upload").addEventListener("click", () => guarded(upload));
  $("result-retry").addEventListener("click", openCapture);
  $("result-mydata").addEventListener("click", () => guarded(openMyData));
  $("withdrawn-mydata").addEventListener("click", () => guarded(openMyData));
  $("mydata-add").addEventListener("click", () => guarded(async () => {
    if (state.status && state.status.consent) openCapture();
    else await openAbout();
  }));
  $("mydata-keep-toggle").addEventListener("click", () => guarded(async () => {
    state.terms = state.terms || await api("GET", "consent/terms");
    await consent(!state.status.storePhotos);
    renderMyData(await api("GET", "enrollment"), await accessBundle());
    announce(t("mydata.keep.saved"));
    $("mydata-keep-toggle").focus();
  }));
  $("mydata-kept-close").addEventListener("click", () => {
    closeKeptPhoto();
    if (state.keptReturn) state.keptReturn.focus();
  });
  $("mydata-renew").addEventListener("click", () => guarded(async () => {
    state.terms = await api("GET", "consent/terms");
    await consent(Boolean(state.status.storePhotos));
    await openMyData();
    announce(t("mydata.renewed"));
  }));
  $("mydata-withdraw").addEventListener("click", () => {
    $("withdraw-confirm").hidden = false;
    $("withdraw-title").focus();
  });
  $("withdraw-cancel").addEventListener("click", () => {
    $("withdraw-confirm").hidden = true;
    $("mydata-withdraw").focus();
  });
  $("withdraw-yes").addEventListener("click", () => guarded(withdraw));
  for (const type of ["keydown", "pointerdown", "input"]) document.addEventListener(type, resetIdleTimer, { passive: true });
  // Leaving the page (navigation, tab closed, bfcache) releases the camera and the photos.
  window.addEventListener("pagehide", () => { stopCamera(); dropPhotos(); });
}

async function start() {
  state.config = await loadConfig();
  await loadTexts(state.config);
  applyTexts();
  renderPhotos();
  wire();
  // Back here after sign-in, with the same address (a kiosk's ?idle= setting survives).
  $("sign-in").href = `${state.config.signInPath}?post_login_redirect_uri=${encodeURIComponent(window.location.pathname + window.location.search)}`;
  const me = await whoAmI();
  if (!me) {
    show("signin");
    return;
  }
  state.me = me;
  $("who-name").textContent = me.name ? t("signedInAs", { name: me.name }) : "";
  $("who").hidden = false;
  resetIdleTimer();
  await guarded(async () => {
    const status = await api("GET", "enrollment");
    state.status = status;
    if (status.consent) {
      renderMyData(status, await accessBundle());
      show("mydata");
    } else if (status.status === "declined") {
      showDeclined();
    } else {
      await openAbout();
    }
    if (!me.mfa) alertText(t("error.mfa"));
  });
}

start();
