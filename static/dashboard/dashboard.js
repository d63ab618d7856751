// Draws every plotly figure on the page (and in panels htmx swaps in). A chart element names the id of the
// <script type="application/json"> that holds its figure: <div data-figure="top-chart-data"></div>.
(function () {
  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source) return;
      var fig = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, fig.data, fig.layout, { displayModeBar: false, responsive: true });
      el.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // <select data-submit-on-change> submits its form (no inline handlers under the Content-Security-Policy).
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-submit-on-change]")) event.target.form.submit();
  });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt); });
})();
