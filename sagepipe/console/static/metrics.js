// Metrics over time: the primary metric of the last runs, drawn with Chart.js (vendored), failures marked.
"use strict";

(() => {
  const data = sagepipe.embedded("chart-data");
  const canvas = document.getElementById("metric-chart");
  if (!data || !canvas || typeof Chart === "undefined") return;
  const points = data.points;
  const values = points.map((point) => point.value).filter((value) => value !== null);
  const floor = values.length ? Math.min(...values) : 0;
  const at = (keep, where) => points.map((point) => (keep(point) ? where(point) : null));
  const valueOrFloor = (point) => (point.value === null ? floor : point.value);

  const chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: points.map((point) => point.started),
      datasets: [
        {
          label: data.metric,
          data: at((point) => point.mark === "succeeded", (point) => point.value),
          borderColor: "#2d6a4f",
          backgroundColor: "#2d6a4f",
          spanGaps: true,
          pointRadius: 3,
        },
        {
          label: "failed or stopped",
          data: at((point) => point.mark === "failed", valueOrFloor),
          showLine: false,
          pointStyle: "crossRot",
          pointRadius: 8,
          borderColor: "#c1121f",
          borderWidth: 2,
        },
        {
          label: "rejected",
          data: at((point) => point.mark === "rejected", valueOrFloor),
          showLine: false,
          pointStyle: "triangle",
          pointRadius: 8,
          borderColor: "#e8590c",
          backgroundColor: "#e8590c",
        },
        {
          label: "champion",
          data: at((point) => point.champion, valueOrFloor),
          showLine: false,
          pointStyle: "star",
          pointRadius: 12,
          borderColor: "#b08900",
          borderWidth: 2,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: true },
      scales: { x: { title: { display: true, text: "run started (UTC)" } }, y: { title: { display: true, text: data.metric } } },
      plugins: {
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? points[items[0].dataIndex].run_id : ""),
            label: (item) => {
              const point = points[item.dataIndex];
              return `${point.status}: ${point.value === null ? "no value" : point.value}`;
            },
          },
        },
      },
      onClick: (event, elements) => {
        if (elements.length) window.location.assign(`/runs/${encodeURIComponent(points[elements[0].index].run_id)}`);
      },
    },
  });
  canvas.dataset.points = String(chart.data.labels.length);
})();
