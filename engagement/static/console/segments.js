// Segment builder: draws the rule tree held in #rules-json as rows (field / operator / value) in
// AND/OR groups with NOT, writes the tree back to #rules-json on every change (the form posts it),
// and shows a debounced live count from the preview-count endpoint. No innerHTML: text only.
(function () {
  "use strict";
  var root = document.getElementById("segment-builder");
  var field = document.getElementById("rules-json");
  var schemaNode = document.getElementById("segment-schema");
  if (!root || !field || !schemaNode) return;
  var schema = JSON.parse(schemaNode.textContent);
  var script = document.querySelector("script[data-preview-url]");
  var previewUrl = script ? script.getAttribute("data-preview-url") : "/api/v1/segments/preview-count/";
  var form = document.getElementById("segment-form");

  var LABELS = {
    equals: "is", contains: "contains", greater_than: "is greater than", less_than: "is less than",
    between: "is between", is_set: "is set", in_last_days: "is in the last … days",
    in_next_days: "is in the next … days", before: "before", after: "after",
    more_than_days_ago: "more than … days ago", "in": "is one of"
  };
  var DATE_LABELS = { greater_than: "is after", less_than: "is before" };

  // ------------------------------------------------------------------ model <-> JSON

  function parse(json, negate) {
    if (!json || typeof json !== "object") return group("and", []);
    if (json.type === "not") return parse(json.rule, !negate);
    if (json.type === "and" || json.type === "or") {
      var g = group(json.type, (json.rules || []).map(function (r) { return parse(r, false); }));
      g.negate = !!negate;
      return g;
    }
    return { kind: "cond", negate: !!negate, rule: JSON.parse(JSON.stringify(json)) };
  }
  function group(op, children) { return { kind: "group", op: op, negate: false, children: children }; }
  function toJson(node) {
    var out = node.kind === "group"
      ? { type: node.op, rules: node.children.map(toJson) }
      : node.rule;
    return node.negate ? { type: "not", rule: out } : out;
  }

  var tree = null;
  function load() {
    var json;
    try { json = JSON.parse(field.value || '{"type": "and", "rules": []}'); }
    catch (e) { showError("The rules are not valid JSON: " + e.message); return false; }
    tree = parse(json, false);
    if (tree.kind !== "group") tree = group("and", [tree]);
    return true;
  }

  // ------------------------------------------------------------------ small DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function select(options, current, onchange, label) {
    var s = el("select", { "aria-label": label || "" });
    options.forEach(function (o) {
      var value = Array.isArray(o) ? o[0] : o, text = Array.isArray(o) ? o[1] : (LABELS[o] || o);
      var opt = el("option", { value: String(value), text: text });
      if (String(value) === String(current)) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onchange(s.value); });
    return s;
  }
  function input(type, value, oninput, label) {
    var i = el("input", { type: type, "aria-label": label || "" });
    i.value = value === null || value === undefined ? "" : String(value);
    i.addEventListener("input", function () { oninput(i.value); changed(); });
    return i;
  }
  function num(text) { var n = parseFloat(text); return isNaN(n) ? null : n; }
  function int(text) { var n = parseInt(text, 10); return isNaN(n) ? null : n; }
  function button(text, onclick, cls) {
    var b = el("button", { type: "button", text: text, "class": cls || "" });
    b.addEventListener("click", onclick);
    return b;
  }

  // ------------------------------------------------------------------ conditions

  function fieldOf(rule) { return rule.type === "attribute" ? "attribute:" + rule.key : rule.type; }
  function attribute(key) {
    for (var i = 0; i < schema.attributes.length; i++) if (schema.attributes[i].key === key) return schema.attributes[i];
    return null;
  }
  function fields() {
    var out = schema.attributes.map(function (a) { return ["attribute:" + a.key, a.label]; });
    return out.concat([
      ["identity", "Has an address"], ["tag", "Tag"], ["timezone", "Time zone"],
      ["consent", "Consent"], ["reachable", "Reachable on"], ["activity", "Messages or calls"],
      ["last_seen", "Last seen"], ["event", "Custom event"], ["segment", "In segment"]
    ]);
  }
  function attributeDefault(a) {
    var op = schema.attribute_operators[a.type][0];
    return { type: "attribute", key: a.key, operator: op, value: a.type === "boolean" ? true : "" };
  }
  function fresh(f) {
    if (f.indexOf("attribute:") === 0) return attributeDefault(attribute(f.slice(10)));
    return {
      identity: { type: "identity", kind: "email", verified: false },
      tag: { type: "tag", value: "" },
      timezone: { type: "timezone", operator: "in", value: [] },
      consent: { type: "consent", channel: "sms", purpose: "marketing", state: "opted_in" },
      reachable: { type: "reachable", channel: "sms", purpose: "marketing" },
      activity: { type: "activity", direction: "inbound", channel: "any", min_count: 1, within_days: 30 },
      last_seen: { type: "last_seen", operator: "in_last_days", value: 30, channel: "any" },
      event: { type: "event", name: "", where: [], min_count: 1, within_days: null },
      segment: { type: "segment", segment_id: schema.segments.length ? schema.segments[0].id : null }
    }[f];
  }

  function attributeValue(rule, a, row) {
    var op = rule.operator, type = a.type === "date" ? "date" : a.type === "number" ? "number" : "text";
    var parseValue = a.type === "number" ? num : function (t) { return t; };
    if (op === "is_set") return;
    if (op === "in_last_days" || op === "in_next_days") {
      row.appendChild(input("number", rule.value, function (t) { rule.value = int(t); }, "days"));
      row.appendChild(el("span", { text: "days", "class": "muted" }));
      return;
    }
    if (a.type === "boolean") {
      row.appendChild(select([["true", "yes"], ["false", "no"]], String(rule.value), function (v) {
        rule.value = v === "true"; changed();
      }, "value"));
      return;
    }
    if (op === "between") {
      if (!Array.isArray(rule.value)) rule.value = [null, null];
      row.appendChild(input(type, rule.value[0], function (t) { rule.value[0] = parseValue(t); }, "from"));
      row.appendChild(el("span", { text: "and" }));
      row.appendChild(input(type, rule.value[1], function (t) { rule.value[1] = parseValue(t); }, "to"));
      return;
    }
    row.appendChild(input(type, rule.value, function (t) { rule.value = parseValue(t); }, "value"));
  }

  var editors = {
    attribute: function (rule, row) {
      var a = attribute(rule.key);
      if (!a) { row.appendChild(el("span", { text: "unknown attribute " + rule.key, "class": "errors" })); return; }
      var ops = schema.attribute_operators[a.type].map(function (o) {
        return [o, (a.type === "date" && DATE_LABELS[o]) || LABELS[o] || o];
      });
      row.appendChild(select(ops, rule.operator, function (v) {
        var wasRange = rule.operator === "between", isRange = v === "between";
        rule.operator = v;
        if (v === "is_set") delete rule.value;
        else if (v === "in_last_days" || v === "in_next_days") rule.value = 7;
        else if (wasRange !== isRange || rule.value === undefined) rule.value = isRange ? [null, null] : "";
        redraw();
      }, "operator"));
      attributeValue(rule, a, row);
    },
    identity: function (rule, row) {
      row.appendChild(select(schema.identity_kinds, rule.kind, function (v) { rule.kind = v; changed(); }, "kind"));
      var box = el("input", { type: "checkbox" });
      box.checked = !!rule.verified;
      box.addEventListener("change", function () { rule.verified = box.checked; changed(); });
      row.appendChild(el("label", {}, [box, document.createTextNode(" verified")]));
    },
    tag: function (rule, row) {
      row.appendChild(input("text", rule.value, function (t) { rule.value = t; }, "tag"));
    },
    timezone: function (rule, row) {
      row.appendChild(select(["in", "is_set"], rule.operator, function (v) {
        rule.operator = v;
        if (v === "is_set") delete rule.value; else rule.value = [];
        redraw();
      }, "operator"));
      if (rule.operator === "in") {
        var i = input("text", (rule.value || []).join(", "), function (t) {
          rule.value = t.split(",").map(function (z) { return z.trim(); }).filter(Boolean);
        }, "time zones, comma separated");
        i.setAttribute("list", "segment-zones");
        i.setAttribute("placeholder", "Europe/Oslo, America/New_York");
        row.appendChild(i);
      }
    },
    consent: function (rule, row) {
      row.appendChild(select(schema.channels, rule.channel, function (v) { rule.channel = v; changed(); }, "channel"));
      row.appendChild(select(["marketing", "transactional"], rule.purpose, function (v) { rule.purpose = v; changed(); }, "purpose"));
      row.appendChild(select([["opted_in", "opted in"], ["opted_out", "opted out"], ["not_set", "never set"]],
        rule.state, function (v) { rule.state = v; changed(); }, "state"));
    },
    reachable: function (rule, row) {
      row.appendChild(select(schema.channels, rule.channel, function (v) { rule.channel = v; changed(); }, "channel"));
      row.appendChild(el("span", { text: "for" }));
      row.appendChild(select(schema.purposes, rule.purpose, function (v) { rule.purpose = v; changed(); }, "purpose"));
    },
    activity: function (rule, row) {
      row.appendChild(select([["inbound", "from them"], ["outbound", "to them"], ["any", "either way"]],
        rule.direction, function (v) { rule.direction = v; changed(); }, "direction"));
      row.appendChild(select([["any", "any channel"]].concat(schema.channels.map(function (c) { return [c, c]; })),
        rule.channel, function (v) { rule.channel = v; changed(); }, "channel"));
      window_(rule, row);
    },
    last_seen: function (rule, row) {
      row.appendChild(select(schema.last_seen_operators, rule.operator, function (v) {
        var moment = v === "before" || v === "after";
        rule.operator = v;
        rule.value = moment ? new Date().toISOString().slice(0, 16) : 30;
        redraw();
      }, "operator"));
      if (rule.operator === "before" || rule.operator === "after") {
        row.appendChild(input("datetime-local", String(rule.value || "").slice(0, 16), function (t) { rule.value = t; }, "moment (UTC)"));
        row.appendChild(el("span", { text: "UTC", "class": "muted" }));
      } else {
        row.appendChild(input("number", rule.value, function (t) { rule.value = int(t); }, "days"));
      }
      row.appendChild(el("span", { text: "on" }));
      row.appendChild(select([["any", "any channel"]].concat(schema.channels.map(function (c) { return [c, c]; })),
        rule.channel || "any", function (v) { rule.channel = v; changed(); }, "channel"));
    },
    event: function (rule, row) {
      row.appendChild(input("text", rule.name, function (t) { rule.name = t; }, "event name"));
      window_(rule, row);
      var list = el("div", { "class": "where" });
      (rule.where || []).forEach(function (w, i) { list.appendChild(whereRow(rule, w, i)); });
      list.appendChild(button("+ property filter", function () {
        rule.where = (rule.where || []).concat([{ property: "", operator: "equals", value: "" }]);
        redraw();
      }, "link"));
      row.appendChild(list);
    },
    segment: function (rule, row) {
      if (!schema.segments.length) { row.appendChild(el("span", { text: "no other segments yet", "class": "muted" })); return; }
      row.appendChild(select(schema.segments.map(function (s) { return [s.id, s.name]; }), rule.segment_id,
        function (v) { rule.segment_id = parseInt(v, 10); changed(); }, "segment"));
    }
  };

  function window_(rule, row) {
    row.appendChild(el("span", { text: "at least" }));
    row.appendChild(input("number", rule.min_count, function (t) { rule.min_count = int(t); }, "at least"));
    row.appendChild(el("span", { text: "times in the last" }));
    var days = input("number", rule.within_days, function (t) { rule.within_days = int(t); }, "days (empty: ever)");
    days.setAttribute("placeholder", "ever");
    row.appendChild(days);
    row.appendChild(el("span", { text: "days" }));
  }

  function whereRow(rule, w, i) {
    var row = el("div", { "class": "where-row" });
    row.appendChild(input("text", w.property, function (t) { w.property = t; }, "property"));
    row.appendChild(select(schema.property_operators, w.operator, function (v) {
      w.operator = v;
      w.value = v === "is_set" ? null : v === "greater_than" || v === "less_than" ? 0 : "";
      redraw();
    }, "property operator"));
    if (w.operator !== "is_set") {
      var kind = typeof w.value === "boolean" ? "boolean" : typeof w.value === "number" ? "number" : "text";
      if (w.operator === "equals") {
        row.appendChild(select([["text", "text"], ["number", "number"], ["boolean", "yes/no"]], kind, function (v) {
          w.value = v === "number" ? 0 : v === "boolean" ? true : "";
          redraw();
        }, "value type"));
      }
      if (kind === "boolean") {
        row.appendChild(select([["true", "yes"], ["false", "no"]], String(w.value), function (v) { w.value = v === "true"; changed(); }, "value"));
      } else {
        row.appendChild(input(kind === "number" ? "number" : "text", w.value, function (t) {
          w.value = kind === "number" ? num(t) : t;
        }, "value"));
      }
    }
    row.appendChild(button("×", function () { rule.where.splice(i, 1); redraw(); }, "link remove"));
    return row;
  }

  // ------------------------------------------------------------------ tree

  function notBox(node) {
    var box = el("input", { type: "checkbox" });
    box.checked = node.negate;
    box.addEventListener("change", function () { node.negate = box.checked; changed(); });
    return el("label", { "class": "not" }, [box, document.createTextNode(" NOT")]);
  }

  function drawCondition(node, parent, index) {
    var row = el("div", { "class": "condition" });
    row.appendChild(notBox(node));
    row.appendChild(select(fields(), fieldOf(node.rule), function (v) { node.rule = fresh(v); redraw(); }, "field"));
    (editors[node.rule.type] || function () {})(node.rule, row);
    row.appendChild(button("Remove", function () { parent.children.splice(index, 1); redraw(); }, "link remove"));
    return row;
  }

  function drawGroup(node, parent, index) {
    var box = el("fieldset", { "class": "group group-" + node.op });
    var head = el("div", { "class": "group-head" });
    head.appendChild(notBox(node));
    head.appendChild(select([["and", "All of (AND)"], ["or", "Any of (OR)"]], node.op, function (v) { node.op = v; redraw(); }, "group"));
    if (parent) head.appendChild(button("Remove group", function () { parent.children.splice(index, 1); redraw(); }, "link remove"));
    box.appendChild(head);
    node.children.forEach(function (child, i) {
      box.appendChild(child.kind === "group" ? drawGroup(child, node, i) : drawCondition(child, node, i));
    });
    if (!node.children.length) {
      box.appendChild(el("p", { "class": "muted", text: node.op === "and" ? "No conditions: every customer." : "No conditions: nobody." }));
    }
    var add = el("div", { "class": "group-add" });
    add.appendChild(button("+ condition", function () {
      node.children.push({ kind: "cond", negate: false, rule: fresh(schema.attributes.length ? "attribute:" + schema.attributes[0].key : "tag") });
      redraw();
    }));
    add.appendChild(button("+ group", function () { node.children.push(group(node.op === "and" ? "or" : "and", [])); redraw(); }));
    box.appendChild(add);
    return box;
  }

  function redraw() {
    while (root.firstChild) root.removeChild(root.firstChild);
    root.appendChild(drawGroup(tree, null, 0));
    changed();
  }

  // ------------------------------------------------------------------ JSON field and live count

  var live = document.getElementById("live-count");
  var purpose = document.getElementById("reach-purpose");
  var timer = null, sequence = 0;

  function changed() {
    field.value = JSON.stringify(toJson(tree), null, 1);
    window.clearTimeout(timer);
    timer = window.setTimeout(count, 400);
  }

  function showError(text) {
    if (!live) return;
    var box = live.querySelector("[data-count-error]");
    box.textContent = text;
    box.hidden = !text;
    if (text) live.querySelector("[data-count]").textContent = "–";
  }

  function csrf() {
    var token = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return token ? token.value : "";
  }

  function count() {
    if (!live || live.offsetParent === null) return; // a static segment: no rules to count

    var mine = ++sequence;
    fetch(previewUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ rules: toJson(tree), purpose: purpose ? purpose.value : "marketing" })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (mine !== sequence) return; // a newer edit is on its way
      if (!res.ok) { showError(res.body.detail || JSON.stringify(res.body)); return; }
      showError("");
      live.querySelector("[data-count]").textContent = res.body.count.toLocaleString();
      var list = live.querySelector("[data-reach]");
      while (list.firstChild) list.removeChild(list.firstChild);
      Object.keys(res.body.reachable).forEach(function (channel) {
        list.appendChild(el("li", { text: channel + ": " + res.body.reachable[channel].toLocaleString() + " reachable" }));
      });
    }).catch(function () { if (mine === sequence) showError("Could not count right now."); });
  }

  if (purpose) purpose.addEventListener("change", count);
  field.addEventListener("change", function () { if (load()) redraw(); });

  var kind = document.querySelector("[data-segment-kind]");
  if (kind) kind.addEventListener("change", function () {
    var isStatic = kind.value === "static";
    document.querySelectorAll("[data-static-only]").forEach(function (n) { n.hidden = !isStatic; });
    document.querySelectorAll("[data-dynamic-only]").forEach(function (n) { n.hidden = isStatic; });
  });

  var zones = el("datalist", { id: "segment-zones" });
  schema.timezones.forEach(function (z) { zones.appendChild(el("option", { value: z })); });
  document.body.appendChild(zones);

  if (load()) redraw();
  else if (live) showError("Fix the JSON below to edit the rules as rows.");
})();
