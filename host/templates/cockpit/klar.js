// Progressive enhancement only: every page works without this script.
// The queue gets a "select all on this page" checkbox in its header.
document.addEventListener("DOMContentLoaded", function () {
  var table = document.querySelector("table.queue");
  if (!table) { return; }
  var head = table.querySelector("thead th");
  var boxes = table.querySelectorAll("tbody input[type=checkbox][name=sel]");
  if (!head || boxes.length === 0) { return; }
  var all = document.createElement("input");
  all.type = "checkbox";
  all.id = "select-all";
  all.setAttribute("aria-label", document.documentElement.lang === "en" ? "Select all on this page" : "Alle auf dieser Seite auswählen");
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
  head.appendChild(all);
});
