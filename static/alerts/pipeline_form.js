// The pipeline form shows only the settings the chosen trigger reads: an input with data-triggers="event
// threshold" is shown (with its form row) for those trigger types only. Without JavaScript every setting shows.
(function () {
  function sync(form) {
    var select = form.querySelector("[data-trigger-select]");
    if (!select) return;
    var chosen = select.value;
    form.querySelectorAll("[data-triggers]").forEach(function (input) {
      var row = input.closest(".form-row") || input;
      var shown = !chosen || input.dataset.triggers.split(" ").indexOf(chosen) !== -1;
      row.hidden = !shown;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("pipeline-form");
    if (!form) return;
    var select = form.querySelector("[data-trigger-select]");
    if (select) select.addEventListener("change", function () { sync(form); });
    sync(form);
  });
})();
