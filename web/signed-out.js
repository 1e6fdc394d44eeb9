// The page after sign-out. Its response carries Clear-Site-Data ("cache", "storage"), so the
// browser has already dropped what this origin stored; this script only shows the text.
import { applyTexts, loadConfig, loadTexts, t } from "./i18n.js";

const config = await loadConfig();
await loadTexts(config);
applyTexts();
document.title = `${t("signedout.title")} – ${t("app.title")}`;
document.getElementById("start").href = `./${window.location.search}`;
document.querySelector("h1").focus();
