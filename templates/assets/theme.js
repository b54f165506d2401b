// Applies a saved theme choice before first paint; without a choice the system setting applies.
(function () {
  // Controls that only work with scripts (the server index's filters) are shown from first paint,
  // so they push nothing down when site.js arrives.
  document.documentElement.classList.add("js");
  try {
    var saved = localStorage.getItem("theme");
    if (saved === "dark" || saved === "light") { document.documentElement.setAttribute("data-theme", saved); }
  } catch (e) { /* storage may be disabled; the system theme applies */ }
})();
