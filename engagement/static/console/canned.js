// Canned responses in the reply box: type "/" then a few letters of a shortcut; pick with ↑/↓ and
// Enter (or a click). The texts come filled in for this customer and agent from the server.
(function () {
  "use strict";
  var box = document.querySelector("form.reply textarea[name=body]");
  var menu = document.querySelector("[data-canned-menu]");
  if (!box || !menu) return;
  var items = null, shown = [], active = 0;

  function load() {
    if (items !== null) return Promise.resolve(items);
    return fetch(menu.getAttribute("data-canned-url"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (data) { items = data.items || []; return items; })
      .catch(function () { items = []; return items; });
  }

  // The "/word" being typed: from the last "/" at the start of the box or after a space, to the caret.
  function token() {
    var caret = box.selectionStart, text = box.value.slice(0, caret);
    var m = text.match(/(^|\s)\/([\w-]*)$/);
    if (!m) return null;
    return { start: caret - m[2].length - 1, end: caret, query: m[2].toLowerCase() };
  }

  function hide() { menu.hidden = true; shown = []; }

  function render() {
    menu.textContent = "";
    shown.forEach(function (item, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("data-shortcut", item.shortcut);
      if (i === active) li.setAttribute("aria-selected", "true");
      var key = document.createElement("strong");
      key.textContent = "/" + item.shortcut;
      var title = document.createElement("span");
      title.textContent = " " + item.title + " — ";
      var text = document.createElement("span");
      text.className = "muted";
      text.textContent = item.text.length > 80 ? item.text.slice(0, 80) + "…" : item.text;
      li.appendChild(key); li.appendChild(title); li.appendChild(text);
      li.addEventListener("mousedown", function (e) { e.preventDefault(); insert(item); });
      menu.appendChild(li);
    });
    menu.hidden = shown.length === 0;
  }

  function insert(item) {
    var t = token();
    if (!t) { hide(); return; }
    box.value = box.value.slice(0, t.start) + item.text + box.value.slice(t.end);
    var caret = t.start + item.text.length;
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
    hide();
    box.focus();
  }

  box.addEventListener("input", function () {
    var t = token();
    if (!t) { hide(); return; }
    load().then(function (all) {
      var now = token();
      if (!now) { hide(); return; }
      shown = all.filter(function (item) {
        return item.shortcut.indexOf(now.query) === 0 || item.title.toLowerCase().indexOf(now.query) !== -1;
      }).slice(0, 8);
      active = 0;
      render();
    });
  });
  box.addEventListener("keydown", function (e) {
    if (menu.hidden || !shown.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      insert(shown[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      hide();
    }
  });
  box.addEventListener("blur", function () { window.setTimeout(hide, 150); });
})();
