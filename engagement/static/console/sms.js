// The reply box: which channel is picked (email shows a subject, SMS a live segment count).
// The segment rules are engagement/services/sms.py's (GSM 03.38: 160/153 septets, extension characters
// count two; otherwise UCS-2: 70/67 UTF-16 units), kept equal by tests/console/test_thread.py.
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXTENSION = "^{}\\[~]|€\f";

  function segments(text) {
    var gsm = true, septets = 0, i, ch;
    for (i = 0; i < text.length; i++) {
      ch = text.charAt(i);
      if (BASIC.indexOf(ch) !== -1) septets += 1;
      else if (EXTENSION.indexOf(ch) !== -1) septets += 2;
      else { gsm = false; break; }
    }
    var units = gsm ? septets : text.length; // JS strings are UTF-16 units already
    var single = gsm ? 160 : 70, split = gsm ? 153 : 67;
    var count = units <= single ? 1 : Math.ceil(units / split);
    return { encoding: gsm ? "GSM-7" : "UCS-2", units: units, count: count, limit: count === 1 ? single : split * count };
  }
  window.smsSegments = segments;

  var form = document.querySelector("form[data-reply]");
  if (!form) return;
  var picker = form.querySelector("[data-channel-picker]");
  var body = form.querySelector("textarea[name=body]");
  var counter = form.querySelector("[data-sms-count]");
  var subject = form.querySelector("[data-for-kind=email]");

  function kind() {
    var option = picker && picker.options[picker.selectedIndex];
    return option ? option.getAttribute("data-kind") : "";
  }
  function update() {
    var k = kind();
    if (subject) subject.hidden = k !== "email";
    if (!counter) return;
    counter.hidden = k !== "sms";
    if (k !== "sms") return;
    var s = segments(body.value);
    counter.textContent = s.count + (s.count === 1 ? " segment" : " segments") + " · " + s.units + "/" +
      s.limit + " " + s.encoding;
  }
  if (picker) picker.addEventListener("change", update);
  if (body) body.addEventListener("input", update);
  update();
})();
