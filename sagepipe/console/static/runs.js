// The runs page: the table follows the stack (polling /api/runs with the page's filters), without a reload.
"use strict";

(() => {
  const body = document.getElementById("runs-body");
  const live = document.getElementById("live");
  const empty = document.getElementById("no-runs");
  const button = document.getElementById("compare-button");
  if (!body || !live) return;

  function chosen() {
    return Array.from(body.querySelectorAll("input[name=run]:checked")).map((box) => box.value);
  }

  function updateCompare() {
    if (button) button.disabled = chosen().length !== 2;
  }

  function cell(text, attributes = {}) {
    return sagepipe.el("td", attributes, text);
  }

  function rowOf(run, checked) {
    const row = sagepipe.el("tr", { "data-run-id": run.run_id, "data-status": run.status });
    const pick = cell(null);
    const box = sagepipe.el("input", { type: "checkbox", name: "run", value: run.run_id, "aria-label": `compare ${run.run_id}` });
    box.checked = checked.has(run.run_id);
    pick.append(box);
    const id = cell(null, { class: "mono" });
    id.append(sagepipe.el("a", { href: `/runs/${encodeURIComponent(run.run_id)}` }, run.run_id));
    const status = cell(null);
    status.append(sagepipe.el("span", { class: sagepipe.statusClass(run.status) }, run.status));
    row.append(
      pick,
      id,
      cell(run.started, { class: "nowrap" }),
      status,
      cell(run.trigger),
      cell(run.who, { title: run.triggered_by }),
      cell(run.commit, { class: "mono", title: run.commit_id }),
      cell(run.data_version, { class: "mono", title: run.data_ref }),
      cell(run.metric, { class: "number" }),
      cell(run.duration, { class: "number" }),
    );
    return row;
  }

  function show(rows) {
    const checked = new Set(chosen());
    const fresh = document.createDocumentFragment();
    for (const run of rows) fresh.append(rowOf(run, checked));
    body.replaceChildren(fresh);
    if (empty) empty.hidden = rows.length > 0;
    updateCompare();
  }

  const api = live.dataset.api + window.location.search;
  sagepipe.poll(
    async () => {
      const page = await sagepipe.fetchJson(api);
      show(page.rows);
      live.classList.remove("stale");
      live.textContent = `live: updated ${new Date().toLocaleTimeString()}`;
      return true;
    },
    (error, delay) => {
      live.classList.add("stale");
      live.textContent = `cannot reach the console (${error.message}); trying again in ${Math.round(delay / 1000)} s`;
    },
  );
  body.addEventListener("change", updateCompare);
  updateCompare();
})();
