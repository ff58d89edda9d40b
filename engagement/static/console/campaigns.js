// Campaign editor and page: the SMS segment count and encoding while typing (sms.js's rules), the
// schedule fields of the chosen kind, and the charts (Chart.js from npm) drawn from the JSON the
// progress fragment carries; htmx re-fetches that fragment every 2 s while the campaign is active.
(function () {
  "use strict";

  // ------------------------------------------------------------------ SMS: segments and encoding
  var purpose = document.querySelector("[data-purpose]");
  function smsInfo(text) {
    var counter = document.querySelector("[data-sms-counter-of]");
    var hint = counter ? counter.getAttribute("data-opt-out-hint") : "";
    // Marketing SMS get the opt-out hint appended unless they mention STOP (content.py).
    var withHint = purpose && purpose.value === "marketing" && hint && text.toUpperCase().indexOf("STOP") === -1
      ? text + "\n" + hint : text;
    var s = window.smsSegments(withHint);
    var label = s.count + (s.count === 1 ? " segment" : " segments") + " · " + s.units + "/" + s.limit + " · " + s.encoding;
    if (withHint !== text) label += " (with “" + hint + "”)";
    if (text.indexOf("{{") !== -1) label += " · before personalization";
    return label;
  }
  function counterFor(input) {
    var id = input.id && document.querySelector("[data-sms-counter-of='" + input.id + "']");
    if (id) return id;
    var next = input.nextElementSibling;
    if (next && next.hasAttribute("data-sms-counter-auto")) return next;
    var span = document.createElement("span");
    span.className = "sms-counter muted";
    span.setAttribute("data-sms-counter-auto", "");
    input.parentNode.insertBefore(span, input.nextSibling);
    return span;
  }
  function updateSms(input) {
    if (!window.smsSegments) return;
    var counter = counterFor(input);
    counter.textContent = input.value ? smsInfo(input.value) : "";
  }
  var smsInputs = document.querySelectorAll("[data-sms-input]");
  smsInputs.forEach(function (input) {
    input.addEventListener("input", function () { updateSms(input); });
    updateSms(input);
  });
  if (purpose) purpose.addEventListener("change", function () { smsInputs.forEach(updateSms); });

  // ------------------------------------------------------------------ schedule kinds
  var kinds = document.querySelectorAll("[data-schedule-kind]");
  function showSchedule() {
    var chosen = "now";
    kinds.forEach(function (k) { if (k.checked) chosen = k.value; });
    document.querySelectorAll("[data-schedule-for]").forEach(function (box) {
      box.hidden = box.getAttribute("data-schedule-for").split(" ").indexOf(chosen) === -1;
    });
  }
  kinds.forEach(function (k) { k.addEventListener("change", showSchedule); });
  if (kinds.length) showSchedule();

  // ------------------------------------------------------------------ channel content shown per kind
  var slots = document.querySelectorAll("[data-channel-slot]");
  function showContent() {
    var used = {};
    slots.forEach(function (select) {
      var option = select.options[select.selectedIndex];
      var kind = option && option.getAttribute("data-kind");
      if (kind) used[kind] = true;
    });
    var any = Object.keys(used).length > 0;
    document.querySelectorAll("[data-content-kind]").forEach(function (box) {
      box.hidden = any && !used[box.getAttribute("data-content-kind")];
    });
  }
  slots.forEach(function (s) { s.addEventListener("change", showContent); });
  if (slots.length) showContent();

  // ------------------------------------------------------------------ charts
  var charts = {};
  var STATES = ["sent", "pending", "sending", "held", "failed", "skipped", "unknown", "holdout"];
  var STATE_COLORS = ["#1f8a4c", "#cbd2d9", "#f0b429", "#b7791f", "#c53030", "#9aa5b1", "#7b61ff", "#52606d"];
  var FUNNEL = ["sent", "delivered", "opened", "clicked", "replied", "converted", "unsubscribed"];

  function readStats() {
    var node = document.getElementById("campaign-stats-data");
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }
  function draw() {
    var stats = readStats();
    if (!stats || !window.Chart) return;
    var total = stats.total;
    var funnel = FUNNEL.filter(function (k) { return k in total && (k !== "converted" || stats.goal_event); });
    var variantKeys = Object.keys(stats.variants || {});
    var data = {
      states: {
        labels: STATES,
        datasets: [{ label: "Recipients", data: STATES.map(function (k) { return k === "pending" ? total.pending : total[k] || 0; }), backgroundColor: STATE_COLORS }]
      },
      funnel: {
        labels: funnel,
        datasets: (variantKeys.length > 1 ? variantKeys : ["total"]).map(function (key, i) {
          var source = key === "total" ? total : stats.variants[key];
          return { label: key === "total" ? "All recipients" : "Variant " + key, data: funnel.map(function (k) { return source[k] || 0; }),
                   backgroundColor: ["#2f6fed", "#1f8a4c", "#f0b429", "#c53030", "#7b61ff", "#52606d", "#9aa5b1", "#e12d39"][i % 8] };
        })
      }
    };
    ["states", "funnel"].forEach(function (name) {
      var canvas = document.getElementById("chart-" + name);
      if (!canvas) return;
      if (charts[name]) {
        charts[name].data = data[name];
        charts[name].update("none");
      } else {
        charts[name] = new window.Chart(canvas, {
          type: name === "states" ? "doughnut" : "bar",
          data: data[name],
          options: { responsive: true, maintainAspectRatio: false, animation: false,
                     plugins: { legend: { position: "bottom" }, title: { display: true, text: name === "states" ? "Recipients by state" : "Funnel" } } }
        });
      }
      canvas.setAttribute("data-chart-total", String(total.sent));
    });
  }
  document.body.addEventListener("htmx:afterSwap", draw);
  draw();
})();
