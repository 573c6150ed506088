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

  // In-place editors take the focus when they appear; Enter saves (the form submits), Escape cancels below.
  function focusEditors(root) {
    root.querySelectorAll("form[data-inline-editor]").forEach(function (form) {
      var field = form.querySelector("input, select");
      if (!field) return;
      field.focus();
      if (field.select) field.select();
    });
  }

  // Editable values are plain cells (the table has 300 a page); their container carries the editor's URL.
  function openEditor(cell) {
    var holder = cell.closest("[data-edit-url]");
    if (!holder || cell.querySelector("form")) return false;
    htmx.ajax("GET", holder.dataset.editUrl.replace("FIELD", cell.dataset.cell), { target: cell, swap: "outerHTML" });
    return true;
  }

  document.addEventListener("click", function (event) {
    var cell = event.target.closest && event.target.closest("[data-cell]");
    if (cell) openEditor(cell);
  });

  // Keyboard, delegated so it works the moment content is swapped in: Enter on a value opens its editor;
  // Enter on a select in an editor saves; Escape in an editor asks the server for the cell as it was.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var editor = target.closest && target.closest("form[data-inline-editor]");
    if (event.key === "Escape" && editor) {
      event.preventDefault();
      htmx.ajax("GET", editor.dataset.cancelUrl, { target: editor.closest("[data-cell]"), swap: "outerHTML" });
      return;
    }
    if (event.key !== "Enter") return;
    if (target.matches && target.matches("[data-cell]")) {
      if (openEditor(target)) event.preventDefault();
    } else if (target.tagName === "SELECT" && target.form && target.form.hasAttribute("data-inline-editor")) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });

  // An editor submitted in the instant before htmx has taken it over still posts through htmx,
  // never as a plain GET of the page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute("data-inline-editor")) return;
    event.preventDefault();
    htmx.ajax("POST", form.getAttribute("hx-post"), { source: form, target: form.closest("[data-cell]"), swap: "outerHTML" });
  });

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
      focusEditors(root);
      wireSelectAll(root);
    });
  });
})();
