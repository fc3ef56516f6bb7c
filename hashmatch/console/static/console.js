// hashmatch console: the only script (served from this origin; the CSP allows no other).
// It polls an import's progress, and selects a new key's secret on focus. Every page
// works without it, except that the import page then needs a reload to move.
"use strict";

function pollImport(box) {
  const url = box.dataset.status;
  const bar = document.getElementById("import-progress");
  const read = document.getElementById("import-read");
  const state = document.getElementById("import-state");
  const report = document.getElementById("import-report");
  const error = document.getElementById("import-error");
  function show(job) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.read;
    bar.textContent = String(job.read);
    read.textContent = job.read.toLocaleString("en");
    state.textContent = job.state;
    if (job.report) {
      for (const dd of report.querySelectorAll("dd[data-field]")) {
        dd.textContent = String(job.report[dd.dataset.field]);
      }
      report.hidden = false;
    }
    if (job.error) {
      error.textContent = job.error;
      error.hidden = false;
    }
    return job.state === "running" || job.state === "merging";
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((job) => { if (show(job)) setTimeout(tick, 400); })
      .catch(() => { state.textContent = "lost contact: reload the page"; });
  }
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("import");
  if (box) pollImport(box);
  for (const el of document.querySelectorAll("[data-select-on-focus]")) {
    el.addEventListener("focus", () => el.select());
  }
});
