// Applies a saved theme choice before first paint; without a choice the system setting applies.
(function () {
  try {
    var saved = localStorage.getItem("theme");
    if (saved === "dark" || saved === "light") { document.documentElement.setAttribute("data-theme", saved); }
  } catch (e) { /* storage may be disabled; the system theme applies */ }
})();
