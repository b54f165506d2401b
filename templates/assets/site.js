// Progressive enhancement only: the theme toggle, copy buttons, the server index's filters and the
// Pagefind search box.
(function () {
  "use strict";
  var root = document.documentElement;

  function effectiveTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) { return chosen; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    var label = toggle.querySelector(".theme-label");
    var sync = function () {
      var dark = effectiveTheme() === "dark";
      toggle.setAttribute("aria-pressed", dark ? "true" : "false");
      label.textContent = dark ? "Light mode" : "Dark mode";
    };
    toggle.classList.remove("pending");
    sync();
    toggle.addEventListener("click", function () {
      var next = effectiveTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("theme", next); } catch (e) { /* the choice lasts for this page only */ }
      sync();
    });
  }

  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent).then(function () {
        button.textContent = "Copied";
        button.setAttribute("aria-live", "polite");
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () {
        button.textContent = "Copy failed";
      });
    });
  });

  // The server index's filters: each select names a row's data attribute holding space-separated
  // values, and a row stays when every chosen value is among them and its name contains the text.
  var filters = document.getElementById("server-filters");
  var table = filters && document.getElementById(filters.getAttribute("data-target"));
  if (table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var count = document.getElementById("filter-count");
    var empty = document.getElementById(table.id + "-empty");
    var suffix = count.textContent.replace(/^[\d,]+ of [\d,]+/, "");
    var total = rows.length.toLocaleString("en-US");
    var apply = function () {
      var text = filters.elements.namedItem("q").value.trim().toLowerCase();
      var chosen = Array.prototype.filter.call(filters.elements, function (el) {
        return el.tagName === "SELECT" && el.value;
      });
      var shown = 0;
      rows.forEach(function (row) {
        var keep = !text || row.getAttribute("data-name").indexOf(text) !== -1;
        for (var i = 0; keep && i < chosen.length; i++) {
          keep = (" " + row.getAttribute("data-" + chosen[i].name) + " ").indexOf(" " + chosen[i].value + " ") !== -1;
        }
        row.hidden = !keep;
        if (keep) { shown++; }
      });
      count.textContent = shown.toLocaleString("en-US") + " of " + total + suffix;
      if (empty) { empty.hidden = shown !== 0; }
    };
    filters.addEventListener("input", apply);
    filters.addEventListener("change", apply);
    filters.addEventListener("submit", function (event) { event.preventDefault(); });
    // A reload or the back button can restore the controls' values: apply them (and only then, so
    // the live region says nothing on an ordinary load).
    if (Array.prototype.some.call(filters.elements, function (el) { return el.value; })) { apply(); }
  }

  var search = document.getElementById("search");
  if (search && window.PagefindUI) {
    // A large site is indexed as several bundles (pagefind/shard-N/), merged into the primary one.
    var bundles = (search.getAttribute("data-base") || "") + "/pagefind/";
    var merged = (search.getAttribute("data-merge") || "").split(" ").filter(Boolean);
    new window.PagefindUI({ element: "#search", showSubResults: false, showImages: false,
                            bundlePath: bundles,
                            mergeIndex: merged.map(function (name) { return { bundlePath: bundles + name + "/" }; }) });
    // Pagefind's input has a placeholder but no label; give it one as soon as it exists.
    var labelInput = function () {
      var input = search.querySelector("input[type=text], input.pagefind-ui__search-input");
      if (input) { input.setAttribute("aria-label", "Search tools and servers"); return true; }
      return false;
    };
    if (!labelInput()) {
      var observer = new MutationObserver(function () { if (labelInput()) { observer.disconnect(); } });
      observer.observe(search, { childList: true, subtree: true });
    }
  }
})();
