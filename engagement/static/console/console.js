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
    // Rows ticked for a bulk action stay ticked across the refresh.
    var ticked = Array.prototype.map.call(
      region.querySelectorAll("input[name=customer]:checked"), function (b) { return b.value; });
    fetch(region.getAttribute("data-fragment-url"), {
      credentials: "same-origin", headers: { "X-Requested-With": "fetch" }
    }).then(function (r) {
      if (r.redirected || r.status === 401 || r.status === 403) { window.location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined) {
        region.innerHTML = html;
        ticked.forEach(function (v) {
          var b = region.querySelector('input[name=customer][value="' + v + '"]');
          if (b) b.checked = true;
        });
        if (stick) toBottom();
        region.dispatchEvent(new CustomEvent("console:refreshed"));
      }
    }).catch(function () {}).then(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }

  // The thread page's other live parts (status head, assignee/team/labels bar): one fetch of
  // ?fragment=bar, each [data-live-part] swapped for its new version. Not while the agent is typing
  // or choosing in one of them: then once focus leaves it.
  var barInFlight = false, barAgain = false, barDeferred = false;
  function busyPart() {
    var el = document.activeElement;
    if (!el || !el.closest) return null;
    var part = el.closest("[data-live-part]");
    return part && el.matches("input, select, textarea") ? part : null;
  }
  function refreshBar() {
    if (mode !== "conversation" || !document.querySelector("[data-live-part]")) return;
    var busy = busyPart();
    if (busy) {
      if (!barDeferred) {
        barDeferred = true;
        busy.addEventListener("focusout", function later() {
          busy.removeEventListener("focusout", later);
          window.setTimeout(function () { barDeferred = false; refreshBar(); }, 0);
        });
      }
      return;
    }
    if (barInFlight) { barAgain = true; return; }
    barInFlight = true;
    fetch(window.location.pathname + "?fragment=bar", {
      credentials: "same-origin", headers: { "X-Requested-With": "fetch" }
    }).then(function (r) {
      return r.ok && !r.redirected ? r.text() : null;
    }).then(function (html) {
      if (!html || busyPart()) return;
      var fresh = document.createElement("template");
      fresh.innerHTML = html;
      fresh.content.querySelectorAll("[data-live-part]").forEach(function (part) {
        var name = part.getAttribute("data-live-part");
        var old = document.querySelector('[data-live-part="' + name + '"]');
        if (old) {
          old.replaceWith(part);
          if (window.htmx) window.htmx.process(part);
        }
      });
      document.dispatchEvent(new CustomEvent("console:bar-refreshed"));
    }).catch(function () {}).then(function () {
      barInFlight = false;
      if (barAgain) { barAgain = false; refreshBar(); }
    });
  }
  function refreshAll() { refresh(); refreshBar(); }

  function relevant(msg) {
    if (msg.event === "catchup") return msg.stale === true;
    if (mode === "inbox") return true;
    if (mode === "tasks") return typeof msg.event === "string" && msg.event.indexOf("agent_task.") === 0;
    if (mode !== "conversation") return false;
    var customer = body.getAttribute("data-customer-id");
    if (customer && msg.customer_id !== undefined && msg.customer_id !== null) {
      return String(msg.customer_id) === customer;
    }
    if (msg.event === "conversation.opened") return true; // maybe the same customer on another channel
    var ids = (body.getAttribute("data-conversation-ids") || "").split(",");
    return ids.indexOf(String(msg.conversation_id)) !== -1;
  }

  var attempts = 0, socket = null;
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/ws/console/");
    socket = ws;
    ws.onopen = function () {
      if (attempts > 0) refreshAll(); // we may have missed events while disconnected
      else {
        // Events between the page's render and this connect reached nobody: the page carries a
        // high-water mark and the server says whether anything is newer ({event: "catchup"}).
        ws.send(JSON.stringify({ type: "catchup", mark: body.getAttribute("data-live-mark") || "" }));
      }
      attempts = 0;
    };
    ws.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.event === "note.created") mentioned(msg);
      if (relevant(msg)) refreshAll();
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

  // A teammate's note named this member: a notice with a link to the thread, live.
  function mentioned(msg) {
    var me = body.getAttribute("data-user-id"), box = document.querySelector("[data-toasts]");
    if (!me || !box || !msg.mentioned_user_ids || msg.mentioned_user_ids.map(String).indexOf(me) === -1) return;
    var toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("data-mention-toast", String(msg.customer_id));
    var link = document.createElement("a");
    link.href = "/customers/" + encodeURIComponent(msg.customer_id) + "/thread/";
    link.textContent = "You were mentioned in a note — open the thread";
    var close = document.createElement("button");
    close.type = "button"; close.className = "link"; close.textContent = "×";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(link); toast.appendChild(close);
    box.appendChild(toast);
  }

  // Bulk actions: show the input the chosen action needs.
  var bulkAction = document.querySelector("[data-bulk-action]");
  function bulkFields() {
    document.querySelectorAll("[data-bulk-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-bulk-for") !== bulkAction.value;
    });
  }
  if (bulkAction) { bulkAction.addEventListener("change", bulkFields); bulkFields(); }

  function sendFrame(frame) { if (socket && socket.readyState === 1) socket.send(JSON.stringify(frame)); }
  // Presence heartbeat: an open console counts as an agent online for webchat visitors.
  window.setInterval(function () { sendFrame({ type: "ping" }); }, 25000);
  // Webchat: "<agent> is typing…" for the visitor while the reply box is being written in.
  var reply = document.querySelector("form.reply textarea[name=body]");
  // After a live refresh, htmx wires the new fragment's hx- attributes.
  region && region.addEventListener("console:refreshed", function () { if (window.htmx) window.htmx.process(region); });
  var conversationMatch = window.location.pathname.match(/\/conversations\/(\d+)\//);
  if (reply && conversationMatch) {
    var conversationId = parseInt(conversationMatch[1], 10), lastTyping = 0, idleTimer = null;
    var typing = function (on) { sendFrame({ type: "typing", conversation_id: conversationId, typing: on }); };
    reply.addEventListener("input", function () {
      if (Date.now() - lastTyping > 3000) { lastTyping = Date.now(); typing(true); }
      window.clearTimeout(idleTimer);
      idleTimer = window.setTimeout(function () { lastTyping = 0; typing(false); }, 5000);
    });
    reply.form.addEventListener("submit", function () { window.clearTimeout(idleTimer); typing(false); });
  }

  toBottom();
  if (region && (mode === "inbox" || mode === "conversation" || mode === "tasks") && "WebSocket" in window) connect();
})();
