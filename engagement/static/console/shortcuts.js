// Keyboard shortcuts of the console, and the "?" overlay that lists them. Never while typing in a field
// (except Escape). Rows of the inbox: j/k move, Enter or o opens, x selects.
(function () {
  "use strict";
  var overlay = document.getElementById("shortcuts-overlay");
  var pendingG = false, gTimer = null;

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-row]")); }
  function current() { return document.querySelector("tr[data-row].row-active"); }
  function move(step) {
    var all = rows(); if (!all.length) return;
    var at = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, at === -1 ? 0 : at + step))];
    all.forEach(function (r) { r.classList.remove("row-active"); });
    next.classList.add("row-active");
    next.scrollIntoView({ block: "nearest" });
  }
  function click(selector) {
    var el = document.querySelector(selector);
    if (el && !el.disabled) { el.click(); return true; }
    return false;
  }
  function focus(selector) {
    var el = document.querySelector(selector);
    if (el) { el.focus(); return true; }
    return false;
  }
  function toggleOverlay(show) {
    if (!overlay) return;
    overlay.hidden = show === undefined ? !overlay.hidden : !show;
    if (!overlay.hidden) overlay.querySelector("[data-close]").focus();
  }
  if (overlay) {
    overlay.addEventListener("click", function (e) {
      if (e.target === overlay || e.target.hasAttribute("data-close")) toggleOverlay(false);
    });
  }
  // Keep the highlighted row across live refreshes of the inbox.
  var region = document.getElementById("live-region");
  var activeId = null;
  document.addEventListener("keyup", function () {
    var row = current(); activeId = row ? row.getAttribute("data-customer-id") : activeId;
  });
  region && region.addEventListener("console:refreshed", function () {
    if (!activeId) return;
    var row = document.querySelector('tr[data-row][data-customer-id="' + activeId + '"]');
    if (row) row.classList.add("row-active");
  });

  document.documentElement.setAttribute("data-shortcuts", "on"); // ready (browser tests wait for it)
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      if (overlay && !overlay.hidden) { toggleOverlay(false); e.preventDefault(); return; }
      if (typing(document.activeElement)) { document.activeElement.blur(); return; }
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    var key = e.key, handled = true;
    if (pendingG) {
      pendingG = false; window.clearTimeout(gTimer);
      if (key === "i") window.location.href = "/";
      else if (key === "c") window.location.href = "/customers/";
      else handled = false;
    } else if (key === "?") toggleOverlay();
    else if (key === "g") { pendingG = true; gTimer = window.setTimeout(function () { pendingG = false; }, 1000); }
    else if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if ((key === "Enter" || key === "o") && current()) {
      var link = current().querySelector("[data-row-link]"); if (link) link.click();
    } else if (key === "x" && current()) {
      var box = current().querySelector("input[type=checkbox]"); if (box) box.click();
    } else if (key === "r") handled = focus("form.reply textarea[name=body]");
    else if (key === "n") handled = focus("form.note-form textarea");
    else if (key === "l") handled = focus("[data-label-input]");
    else if (key === "a") handled = click('[data-shortcut-action="assign-me"]');
    else if (key === "e") handled = click('[data-shortcut-action="resolve"]') || click('[data-shortcut-action="reopen"]');
    else if (key === "s") handled = click('[data-shortcut-action="snooze"]');
    else handled = false;
    if (handled) e.preventDefault();
  });
})();
