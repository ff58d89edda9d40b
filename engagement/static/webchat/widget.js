/*
 * Engagement webchat widget. Embed with one tag:
 *   <script src="https://<platform>/webchat/widget.js" data-token="<channel public token>" async></script>
 * Optional settings, set before the tag:
 *   window.EngagementChat = { title: "Chat with us", open: false,
 *     user: { id: "42", email: "ada@example.com", name: "Ada", hash: "<hex HMAC-SHA256>" } };
 * The hash is computed on the host site's server: HMAC-SHA256(identity_secret, id + "\n" + email).
 *
 * Everything renders inside a shadow root (host-page CSS cannot reach it) and every text is set with
 * textContent: nothing from the network or the page is ever interpreted as HTML.
 */
(function () {
  "use strict";
  if (window.__engagementChatLoaded) return;
  window.__engagementChatLoaded = true;

  var script = document.currentScript ||
    document.querySelector('script[src*="/webchat/widget.js"][data-token]');
  if (!script) return;
  var settings = window.EngagementChat || {};
  var token = script.getAttribute("data-token") || settings.token;
  if (!token) { console.warn("[webchat] no data-token on the script tag"); return; }
  var base = new URL(script.src, window.location.href).origin;
  var wsBase = base.replace(/^http/, "ws");
  var storeKey = "engagement-chat:" + token + ":";
  var user = settings.user && settings.user.hash ? settings.user : null;
  // A page with a nonce-based Content-Security-Policy gives its nonce to this tag; the widget's one
  // <style> element carries it, so the chat keeps its look under the page's CSP (ours included).
  var cspNonce = script.nonce || script.getAttribute("nonce") || "";

  function store(name, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(storeKey + name);
      if (value === null) window.localStorage.removeItem(storeKey + name);
      else window.localStorage.setItem(storeKey + name, value);
    } catch (e) { /* storage may be disabled: the chat still works for this page view */ }
    return null;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Line icons as inline SVG (paths from Feather Icons, MIT): an emoji depends on the visitor's fonts and
  // shows as an empty box where none has it.
  var ICONS = {
    chat: ["M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z"],
    attach: ["M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"],
    file: ["M13 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z", "M13 2v7h7"]
  };

  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var attrs = { viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "2",
      "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false",
      class: "icon" };
    Object.keys(attrs).forEach(function (k) { svg.setAttribute(k, attrs[k]); });
    ICONS[name].forEach(function (d) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  function newClientId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var CSS = [
    ":host{all:initial;--c:#2563eb}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;",
    "border:0;cursor:pointer;color:#fff;background:var(--c);box-shadow:0 4px 14px rgba(0,0,0,.25);",
    "display:flex;align-items:center;justify-content:center}.launcher .icon{width:26px;height:26px}",
    ".icon{width:18px;height:18px;display:block}.file-link{display:inline-flex;gap:4px;align-items:center}",
    ".file-link .icon{width:14px;height:14px;flex:none}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#dc2626;",
    "color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}",
    ".panel{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:360px;max-width:calc(100vw - 40px);",
    "height:520px;max-height:calc(100vh - 120px);display:flex;flex-direction:column;background:#fff;color:#111827;",
    "border-radius:12px;box-shadow:0 10px 30px rgba(0,0,0,.25);overflow:hidden;font-size:14px;line-height:1.4}",
    ".panel[hidden]{display:none}",
    ".head{background:var(--c);color:#fff;padding:12px 14px}.head b{display:block;font-size:15px}",
    ".head small{opacity:.9}",
    ".notice{background:#fef3c7;color:#78350f;padding:8px 12px;font-size:13px}",
    ".notice form{display:flex;gap:6px;margin-top:6px}.notice input{flex:1;padding:5px;border:1px solid #d1d5db;",
    "border-radius:6px}",
    ".log{flex:1;overflow-y:auto;padding:12px;margin:0;list-style:none;background:#f9fafb}",
    ".msg{margin:6px 0;display:flex;flex-direction:column;max-width:82%}",
    ".msg .bubble{padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".msg.visitor{margin-left:auto;align-items:flex-end}.msg.visitor .bubble{background:var(--c);color:#fff}",
    ".msg.agent .bubble{background:#e5e7eb}.msg .who{font-size:11px;color:#6b7280;margin:0 4px 2px}",
    ".msg.pending .bubble{opacity:.6}.msg.failed .bubble{background:#fee2e2;color:#991b1b}",
    ".msg .err{font-size:11px;color:#b91c1c}.msg img{max-width:220px;max-height:220px;border-radius:6px;",
    "display:block;margin-top:4px}.msg a{color:inherit}",
    ".typing{padding:2px 14px;font-size:12px;color:#6b7280;min-height:18px;background:#f9fafb}",
    ".compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e5e7eb;align-items:flex-end}",
    ".compose textarea{flex:1;resize:none;height:40px;padding:8px;border:1px solid #d1d5db;border-radius:8px;",
    "font-size:14px}",
    "button.send,button.attach,.notice button{border:0;border-radius:8px;padding:8px 10px;cursor:pointer;",
    "background:var(--c);color:#fff}button.attach{background:#e5e7eb;color:#111827}",
    ".status{font-size:11px;color:#6b7280;padding:0 12px 4px;background:#f9fafb}"
  ].join("");

  var host = el("div", { id: "engagement-chat" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("style", cspNonce ? { nonce: cspNonce } : null, CSS));
  var launcher = el("button", { class: "launcher", id: "ec-launcher", type: "button", "aria-label": "Open chat" });
  launcher.appendChild(icon("chat"));
  var badge = el("span", { class: "badge", hidden: "" });
  launcher.appendChild(badge);
  var panel = el("section", { class: "panel", id: "ec-panel", hidden: "", role: "dialog", "aria-label": "Chat" });
  var head = el("div", { class: "head" });
  var title = el("b", { id: "ec-title" }, settings.title || "Chat");
  var subtitle = el("small", { id: "ec-subtitle" }, "");
  head.appendChild(title); head.appendChild(subtitle);
  var notice = el("div", { class: "notice", id: "ec-notice", hidden: "" });
  var noticeText = el("div", { id: "ec-reply-time" });
  var emailForm = el("form", { id: "ec-email-form" });
  var emailInput = el("input", { type: "email", id: "ec-email", placeholder: "you@example.com", "aria-label": "Your email" });
  emailForm.appendChild(emailInput);
  emailForm.appendChild(el("button", { type: "submit" }, "Notify me"));
  notice.appendChild(noticeText); notice.appendChild(emailForm);
  var log = el("ol", { class: "log", id: "ec-log", "aria-live": "polite" });
  var typing = el("div", { class: "typing", id: "ec-typing" });
  var status = el("div", { class: "status", id: "ec-status" });
  var compose = el("form", { class: "compose", id: "ec-compose" });
  var input = el("textarea", { id: "ec-input", placeholder: "Write a message…", "aria-label": "Message" });
  var fileInput = el("input", { type: "file", id: "ec-file", hidden: "" });
  var attachBtn = el("button", { type: "button", class: "attach", id: "ec-attach", "aria-label": "Attach a file" });
  attachBtn.appendChild(icon("attach"));
  var sendBtn = el("button", { type: "submit", class: "send", id: "ec-send" }, "Send");
  compose.appendChild(input); compose.appendChild(fileInput); compose.appendChild(attachBtn); compose.appendChild(sendBtn);
  [head, notice, log, typing, status, compose].forEach(function (n) { panel.appendChild(n); });
  root.appendChild(panel); root.appendChild(launcher);

  // ------------------------------------------------------------------ state
  var config = null, ws = null, welcomed = false, attempts = 0, stopped = false;
  var visitorToken = user ? "" : (store("visitor") || "");
  var sessionToken = "";           // the token the server gave this page (verified visitors: memory only)
  var lastId = 0, unread = 0, typingTimer = null, pingTimer = null;
  var shown = {};                  // "id:<n>" / "cid:<client id>" -> <li>
  var outbox = [];                 // messages not yet acknowledged, resent after every reconnect
  try { outbox = JSON.parse(store("outbox") || "[]") || []; } catch (e) { outbox = []; }

  function saveOutbox() { store("outbox", outbox.length ? JSON.stringify(outbox) : null); }
  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 60; }
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function setStatus(text) { status.textContent = text || ""; }

  function render(msg, state) {
    var li = (msg.id && shown["id:" + msg.id]) || (msg.client_id && shown["cid:" + msg.client_id]);
    var fresh = !li;
    var stick = atBottom();
    if (fresh) {
      li = el("li", { class: "msg " + (msg.from === "agent" ? "agent" : "visitor") });
      if (msg.from === "agent") li.appendChild(el("span", { class: "who" }, msg.author || ""));
      var bubble = el("div", { class: "bubble" }, msg.body || "");
      (msg.attachments || []).forEach(function (a) {
        if (typeof a.url !== "string" || a.url.charAt(0) !== "/") return;
        var url = base + a.url;
        if (/^image\//.test(a.content_type)) {
          var img = el("img", { alt: a.name || "image" });
          img.src = url;
          bubble.appendChild(img);
        } else {
          var link = el("a", { target: "_blank", rel: "noopener noreferrer", class: "file-link" });
          link.appendChild(icon("file"));
          link.appendChild(el("span", null, a.name || "file"));
          link.href = url;
          bubble.appendChild(el("div")).appendChild(link);
        }
      });
      li.appendChild(bubble);
      log.appendChild(li);
    }
    if (msg.id) { li.setAttribute("data-id", String(msg.id)); shown["id:" + msg.id] = li; lastId = Math.max(lastId, msg.id); }
    if (msg.client_id) shown["cid:" + msg.client_id] = li;
    li.classList.toggle("pending", state === "pending");
    li.classList.toggle("failed", state === "failed");
    if (fresh && (stick || msg.from !== "agent")) scrollDown();
    if (fresh && msg.from === "agent" && panel.hidden) { unread += 1; badge.textContent = String(unread); badge.hidden = false; }
    return li;
  }

  function fail(clientId, text) {
    var li = shown["cid:" + clientId];
    if (!li) return;
    li.classList.remove("pending"); li.classList.add("failed");
    li.appendChild(el("span", { class: "err" }, text));
  }

  function showAvailability(av) {
    if (!av) return;
    // Away: the notice below says when to expect a reply (said once, not twice).
    subtitle.textContent = av.online ? "We're online" : "We're away right now";
    var askEmail = !av.online && !(welcomed && welcomed.has_email) && !store("email");
    noticeText.textContent = av.online ? "" : av.reply_time_text + (askEmail ? " Leave your email and we'll continue there." : "");
    emailForm.hidden = !askEmail;
    notice.hidden = av.online;
  }

  // ------------------------------------------------------------------ socket
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }

  function flush() {
    if (!welcomed) return;
    outbox.forEach(function (m) { if (!m.waitUntil || m.waitUntil <= Date.now()) send({ type: "message", client_id: m.client_id, body: m.body }); });
  }

  function connect() {
    if (stopped) return;
    ws = new WebSocket(wsBase + "/ws/webchat/" + encodeURIComponent(token) + "/");
    ws.onopen = function () {
      setStatus("");
      // after: 0 — the recent history again, deduplicated here by id: a reply queued before our last
      // acknowledged message can still be pushed while we were away, so "newer than lastId" could miss it.
      send({ type: "hello", visitor: visitorToken, after: 0,
             identity: user ? { user_id: user.id || "", email: user.email || "", name: user.name || "", hash: user.hash } : null });
    };
    ws.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f.type === "welcome") {
        attempts = 0;
        welcomed = f;
        sessionToken = f.visitor;
        if (!f.verified) { visitorToken = f.visitor; store("visitor", f.visitor); }
        (f.messages || []).forEach(function (m) {
          render(m, "sent");
          outbox = outbox.filter(function (o) { return o.client_id !== m.client_id; });
        });
        saveOutbox();
        showAvailability(f.availability);
        flush();
        clearInterval(pingTimer);
        pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
      } else if (f.type === "ack") {
        outbox = outbox.filter(function (o) { return o.client_id !== f.client_id; });
        saveOutbox();
        render(f.message, "sent");
      } else if (f.type === "message") {
        render(f.message, "sent");
        if (f.message.from === "agent") { typing.textContent = ""; }
      } else if (f.type === "typing") {
        clearTimeout(typingTimer);
        typing.textContent = f.typing ? (f.author || "Someone") + " is typing…" : "";
        if (f.typing) typingTimer = setTimeout(function () { typing.textContent = ""; }, 8000);
      } else if (f.type === "email_saved") {
        store("email", f.email);
        noticeText.textContent = "Thanks! We'll also reply to " + f.email + ".";
        emailForm.hidden = true;
      } else if (f.type === "error") {
        if (f.client_id && f.retryable) {
          var wait = Math.max(1, f.retry_after || 2) * 1000;
          outbox.forEach(function (o) { if (o.client_id === f.client_id) o.waitUntil = Date.now() + wait; });
          setStatus("Sending too fast: retrying shortly…");
          setTimeout(flush, wait + 50);
        } else if (f.client_id) {
          outbox = outbox.filter(function (o) { return o.client_id !== f.client_id; });
          saveOutbox();
          fail(f.client_id, f.message);
        } else {
          setStatus(f.message);
        }
      }
    };
    ws.onclose = function (e) {
      welcomed = false;
      clearInterval(pingTimer);
      if (e.code === 4403 || e.code === 4401) {
        stopped = true;
        setStatus(e.code === 4401 ? "Could not verify who you are." : "Chat is not available on this site.");
        return;
      }
      var delay = Math.min(10000, 500 * Math.pow(2, attempts++)) * (0.75 + Math.random() / 2);
      setStatus("Reconnecting…");
      setTimeout(connect, delay);
    };
  }

  // ------------------------------------------------------------------ UI events
  launcher.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    store("open", panel.hidden ? null : "1");
    if (!panel.hidden) { unread = 0; badge.hidden = true; scrollDown(); input.focus(); }
  });
  compose.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = input.value.trim();
    if (!body) return;
    if (config && body.length > config.max_message_chars) {
      setStatus("Messages may be at most " + config.max_message_chars + " characters.");
      return;
    }
    var m = { client_id: newClientId(), body: body };
    outbox.push(m); saveOutbox();
    render({ client_id: m.client_id, from: "visitor", body: body }, "pending");
    input.value = "";
    send({ type: "message", client_id: m.client_id, body: body });
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); compose.requestSubmit ? compose.requestSubmit() : sendBtn.click(); }
  });
  emailForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (emailInput.value.trim()) send({ type: "email", email: emailInput.value.trim() });
  });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    if (config && file.size > config.max_upload_bytes) {
      setStatus("Files may be at most " + Math.round(config.max_upload_bytes / 1048576) + " MB.");
      return;
    }
    var cid = newClientId();
    render({ client_id: cid, from: "visitor", body: "Attachment: " + file.name }, "pending");
    var form = new FormData();
    form.append("visitor", sessionToken || visitorToken);
    form.append("client_id", cid);
    form.append("file", file);
    fetch(base + "/webchat/" + encodeURIComponent(token) + "/upload/", { method: "POST", body: form })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { fail(cid, res.body.message || "Upload failed"); return; }
        var li = shown["cid:" + cid];
        // 202 without a message: received and kept for the team, not yet on the timeline.
        if (!res.body.message) { if (li) { li.classList.remove("pending"); li.classList.add("sent"); } return; }
        if (li) { li.parentNode.removeChild(li); delete shown["cid:" + cid]; }
        render(res.body.message, "sent");
      })
      .catch(function () { fail(cid, "Upload failed"); });
  });

  // ------------------------------------------------------------------ start
  fetch(base + "/webchat/" + encodeURIComponent(token) + "/config/", { credentials: "omit" })
    .then(function (r) { if (!r.ok) throw new Error("refused"); return r.json(); })
    .then(function (c) {
      config = c;
      panel.style.setProperty("--c", c.color); launcher.style.setProperty("--c", c.color);
      host.style.setProperty("--c", c.color);
      if (!settings.title) title.textContent = c.title;
      showAvailability(c);
      var greeting = el("li", { class: "msg agent" });
      greeting.appendChild(el("div", { class: "bubble" }, c.greeting));
      log.appendChild(greeting);
      outbox.forEach(function (m) { render({ client_id: m.client_id, from: "visitor", body: m.body }, "pending"); });
      (document.body || document.documentElement).appendChild(host);
      if (settings.open || store("open")) launcher.click();
      connect();
    })
    .catch(function () { console.warn("[webchat] this page's origin may not embed chat " + token); });
})();
