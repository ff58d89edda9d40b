// The reports page: draws each report's chart (engagement/reports/selectors.py describes it) with
// Chart.js from npm (var/frontend/vendor/chart.umd.js). No inline script or style: strict CSP.
(function () {
  "use strict";
  var COLORS = ["#2680c2", "#e12d39", "#3ebd93", "#f0b429", "#8719e0", "#52606d", "#0f609b", "#ab091e"];

  function draw() {
    var source = document.getElementById("report-charts");
    if (!source || !window.Chart) return;
    var charts = JSON.parse(source.textContent);
    Object.keys(charts).forEach(function (name) {
      var spec = charts[name];
      var canvas = document.getElementById("chart-" + name);
      if (!canvas || !spec || !spec.labels) return;
      var datasets = spec.datasets.map(function (d, i) {
        var color = COLORS[i % COLORS.length];
        return { label: d.label, data: d.data, backgroundColor: color, borderColor: color, spanGaps: true };
      });
      var horizontal = spec.indexAxis === "y";
      var chart = new window.Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          indexAxis: spec.indexAxis || "x",
          scales: {
            x: { stacked: !!spec.stacked, beginAtZero: horizontal },
            y: { stacked: !!spec.stacked, beginAtZero: true }
          }
        }
      });
      canvas.dataset.chartReady = "1";
      canvas.chart = chart;
    });
    document.body.dataset.chartsReady = "1";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
