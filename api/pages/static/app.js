// Small behaviours only (no inline script anywhere: the CSP allows this file alone): the
// dashboard refreshes itself; "select all" in the work queue; a campaign picker submits itself.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  const live = document.querySelector("[data-refresh]");
  if (live) {
    const every = Number(live.dataset.every || 30) * 1000;
    setInterval(async () => {
      try {
        const response = await fetch(live.dataset.refresh, { credentials: "same-origin" });
        if (response.ok) {
          live.innerHTML = await response.text();
          live.dataset.refreshedAt = new Date().toISOString();
        }
      } catch (_) { /* offline for a moment: try again next time */ }
    }, every);
  }
  document.querySelectorAll("form[data-busy]").forEach((form) => {
    form.addEventListener("submit", () => {  // a long file: say it is working
      const note = form.querySelector("[data-busy-note]");
      if (note) note.hidden = false;
    });
  });
  const all = document.querySelector("[data-select-all]");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[name="cases"]').forEach((box) => { box.checked = all.checked; });
    });
  }
});
