// Console live updates: a websocket to /ws/console/ triggers re-fetching the page's fragment.
(function () {
  "use strict";
  var body = document.body, mode = body.getAttribute("data-live");
  var region = document.getElementById("live-region");

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 80; }
  function toBottom() { if (mode === "conversation" && region) region.scrollTop = region.scrollHeight; }

  var inFlight = false, again = false;
  function refresh() {
    if (!region) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    var stick = nearBottom(region);
    fetch(region.getAttribute("data-fragment-url"), {
      credentials: "same-origin", headers: { "X-Requested-With": "fetch" }
    }).then(function (r) {
      if (r.redirected || r.status === 401 || r.status === 403) { window.location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined) { region.innerHTML = html; if (stick) toBottom(); }
    }).catch(function () {}).then(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }

  function relevant(msg) {
    if (mode === "inbox") return true;
    if (mode !== "conversation") return false;
    if (msg.event === "conversation.opened") return true; // maybe the same customer on another channel
    var ids = (body.getAttribute("data-conversation-ids") || "").split(",");
    return ids.indexOf(String(msg.conversation_id)) !== -1;
  }

  var attempts = 0;
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/ws/console/");
    ws.onopen = function () {
      if (attempts > 0) refresh(); // we may have missed events while disconnected
      attempts = 0;
    };
    ws.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (relevant(msg)) refresh();
    };
    ws.onclose = function (e) {
      if (e.code === 4403) return; // not a workspace member: retrying will not help
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts++)) * (0.5 + Math.random() / 2);
      window.setTimeout(connect, delay);
    };
  }

  document.addEventListener("change", function (e) {
    if (e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });
  document.addEventListener("submit", function (e) {
    var q = e.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) e.preventDefault();
  });

  toBottom();
  if (region && (mode === "inbox" || mode === "conversation") && "WebSocket" in window) connect();
})();
