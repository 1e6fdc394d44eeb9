// All user-facing text comes from i18n/<language>.json: one file per language, so the page can be
// translated without touching code. Text is always set with textContent, never as HTML.

let texts = {};

export async function loadTexts(config) {
  const wanted = (navigator.languages || [navigator.language || ""]).map((l) => l.toLowerCase().split("-")[0]);
  const lang = wanted.find((l) => config.languages.includes(l)) || config.defaultLanguage;
  const response = await fetch(`i18n/${lang}.json`, { credentials: "same-origin" });
  texts = await response.json();
  document.documentElement.lang = lang;
  return lang;
}

export function t(key, vars = {}) {
  const template = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function applyTexts(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
}

export async function loadConfig() {
  const response = await fetch("config.json", { credentials: "same-origin" });
  return response.json();
}
