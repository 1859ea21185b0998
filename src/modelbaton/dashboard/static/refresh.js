// Refreshes the page's <main> in place every data-refresh seconds (scroll position kept).
// Hand-written, no library: the dashboard must work offline.
(function () {
  "use strict";
  var main = document.querySelector("main[data-refresh]");
  if (!main) { return; }
  var seconds = parseFloat(main.getAttribute("data-refresh")) || 5;
  function refresh() {
    fetch(window.location.href, { headers: { "X-Baton-Partial": "1" }, cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var current = document.querySelector("main[data-refresh]");
        current.innerHTML = html;
        current.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {
        var stamp = document.getElementById("updated");
        if (stamp) { stamp.textContent = "dashboard unreachable, retrying"; }
      })
      .then(function () { window.setTimeout(refresh, seconds * 1000); });
  }
  window.setTimeout(refresh, seconds * 1000);
})();
