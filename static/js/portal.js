// Small behaviours, wired on htmx's load event so they also run on swapped-in content.
// No inline scripts anywhere: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  // <canvas data-chart="ID"> draws the Chart.js configuration held in <script type="application/json" id="ID">.
  function drawCharts(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source || Chart.getChart(canvas)) return;
      var config = JSON.parse(source.textContent);
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
      new Chart(canvas, config);
      canvas.dataset.drawn = "true";
    });
  }

  // In-place editors: Escape cancels (asks the server for the cell as it was), Enter saves (the form submits).
  function wireEditors(root) {
    root.querySelectorAll("form[data-inline-editor]").forEach(function (form) {
      var field = form.querySelector("input, select");
      if (!field || form.dataset.wired) return;
      form.dataset.wired = "true";
      field.focus();
      if (field.select) field.select();
      form.addEventListener("keydown", function (event) {
        if (event.key === "Escape") {
          event.preventDefault();
          htmx.ajax("GET", form.dataset.cancelUrl, { target: form.closest("[data-cell]"), swap: "outerHTML" });
        }
      });
    });
  }

  // Select-all checkbox for bulk actions.
  function wireSelectAll(root) {
    root.querySelectorAll("input[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll("input[name='" + box.dataset.selectAll + "']").forEach(function (row) {
          row.checked = box.checked;
        });
      });
    });
  }

  // A short message after an action, from the server's HX-Trigger header: {"toast": "Saved"}.
  document.addEventListener("toast", function (event) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var note = document.createElement("p");
    note.className = "toast";
    note.setAttribute("role", "status");
    note.textContent = event.detail.value || event.detail;
    box.appendChild(note);
    setTimeout(function () { note.remove(); }, 3500);
  });

  document.addEventListener("DOMContentLoaded", function () {
    htmx.onLoad(function (root) {
      drawCharts(root);
      wireEditors(root);
      wireSelectAll(root);
    });
  });
})();
