// The run page: click a state of the graph to see what it did; a running execution's graph follows it.
"use strict";

(() => {
  const page = document.getElementById("run");
  if (!page) return;
  let data = sagepipe.embedded("states-data");
  let selected = null;

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function stateNodes() {
    return Array.from(document.querySelectorAll("#graph g.node.state"));
  }

  function nameOf(node) {
    const title = node.querySelector(":scope > title");
    return title ? title.textContent : null;
  }

  function showState(name) {
    if (!data || !data.states || !(name in data.states)) return;
    selected = name;
    const state = data.states[name];
    const panel = document.getElementById("state-panel");
    panel.hidden = false;
    text("state-name", state.name);
    const status = document.getElementById("state-status");
    status.className = sagepipe.statusClass(state.status.split(" ")[0]);
    status.textContent = state.status;
    text("state-type", state.comment ? `${state.type} · ${state.comment}` : state.type);
    text("state-attempts", state.attempts || (state.visits.length ? "—" : ""));
    text("state-retries", state.retries);
    const last = state.visits.length ? state.visits[state.visits.length - 1] : null;
    const seconds = state.visits.map((visit) => visit.seconds).filter((value) => value !== null);
    text("state-duration", seconds.length ? `${seconds.reduce((a, b) => a + b, 0).toFixed(3)} s` + (state.visits.length > 1 ? ` over ${state.visits.length} visits` : "") : "");
    text("state-entered", last ? last.entered : "not entered in this run");
    text("state-caught", state.caught_to);
    text("state-input", last ? last.input : "");
    text("state-output", last ? last.output : "");
    const errors = document.getElementById("state-errors");
    errors.replaceChildren();
    for (const failure of state.errors) {
      const box = sagepipe.el("div", { class: "state-error" });
      box.append(sagepipe.el("h3", {}, "Error"), sagepipe.el("p", { class: "mono error-name" }, failure.error));
      box.append(sagepipe.el("h3", {}, "Cause"), sagepipe.el("pre", { class: "payload cause" }, failure.cause || "—"));
      errors.append(box);
    }
    for (const node of stateNodes()) node.classList.toggle("selected", nameOf(node) === name);
    if (window.location.hash !== `#state=${encodeURIComponent(name)}`) {
      window.history.replaceState(null, "", `#state=${encodeURIComponent(name)}`);
    }
  }

  function wireGraph() {
    for (const node of stateNodes()) {
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "button");
      node.setAttribute("aria-label", `state ${nameOf(node)}`);
    }
  }

  const graph = document.getElementById("graph");
  if (graph) {
    graph.addEventListener("click", (event) => {
      const node = event.target.closest("g.node.state");
      if (node) showState(nameOf(node));
    });
    graph.addEventListener("keydown", (event) => {
      const node = event.target.closest("g.node.state");
      if (node && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        showState(nameOf(node));
      }
    });
    wireGraph();
  }
  const wanted = decodeURIComponent((window.location.hash.match(/^#state=(.+)$/) || [])[1] || "");
  if (wanted) showState(wanted);

  // While the execution runs, follow it: the graph and the states' details are replaced as its history grows.
  const runStatus = document.getElementById("run-status");
  const executionStatus = document.getElementById("execution-status");
  const running = () => (data && data.status === "RUNNING") || (runStatus && runStatus.textContent === "RUNNING");
  if (!running()) return;
  sagepipe.poll(async () => {
    const fresh = await sagepipe.fetchJson(page.dataset.api);
    if (fresh.states) data = fresh.states;
    if (fresh.graph && graph) {
      // The server sanitized this SVG (drawing elements only, all text escaped); parsed as XML, nothing runs.
      const parsed = new DOMParser().parseFromString(fresh.graph, "image/svg+xml").documentElement;
      if (parsed && parsed.localName === "svg") graph.replaceChildren(document.importNode(parsed, true));
      wireGraph();
    }
    if (runStatus) {
      runStatus.textContent = fresh.status;
      runStatus.className = sagepipe.statusClass(fresh.status);
    }
    if (executionStatus && data) {
      executionStatus.textContent = data.status;
      executionStatus.className = sagepipe.statusClass(data.status);
    }
    if (selected) showState(selected);
    if (!running()) {
      window.location.reload(); // the run ended: its final record, metrics and logs
      return false;
    }
    return true;
  });
})();
