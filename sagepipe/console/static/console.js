// sagepipe console: helpers every page uses. Data from the server is set with textContent, never as HTML.
"use strict";

const sagepipe = (() => {
  /** An element with attributes and, optionally, text (set as text). */
  function el(tag, attributes = {}, text = undefined) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** The JSON a page embeds in <script type="application/json" id=...>, or null. */
  function embedded(id) {
    const holder = document.getElementById(id);
    if (!holder) return null;
    try {
      return JSON.parse(holder.textContent);
    } catch (error) {
      return null;
    }
  }

  /** The refresh interval the console was started with, in milliseconds, within [0.5 s, 60 s]. */
  function refreshMilliseconds() {
    const seconds = Number(document.body.dataset.refreshSeconds || "2");
    return Math.min(60000, Math.max(500, (Number.isFinite(seconds) ? seconds : 2) * 1000));
  }

  /**
   * Calls `tick` (an async function) every refresh interval. After a failure the interval doubles, up to 60 s,
   * and goes back to normal after a success. `tick` returns false to stop.
   */
  function poll(tick, onFailure) {
    const normal = refreshMilliseconds();
    let delay = normal;
    let timer = null;
    async function run() {
      let keepGoing = true;
      try {
        keepGoing = (await tick()) !== false;
        delay = normal;
      } catch (error) {
        delay = Math.min(60000, delay * 2);
        if (onFailure) onFailure(error, delay);
      }
      if (keepGoing) timer = window.setTimeout(run, delay);
    }
    timer = window.setTimeout(run, delay);
    return () => window.clearTimeout(timer);
  }

  async function fetchJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  }

  function statusClass(status) {
    return "status status-" + String(status || "unknown").toLowerCase().replace(/[^a-z_]/g, "");
  }

  return { el, embedded, poll, fetchJson, statusClass };
})();
