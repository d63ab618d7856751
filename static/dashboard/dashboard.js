// The dashboard's only script (no inline scripts or handlers, so a strict Content-Security-Policy holds).
// Draws every plotly figure on the page (and in panels htmx swaps in): a chart element names the id of the
// <script type="application/json"> that holds its figure: <div data-figure="top-chart-data"></div>.
// Also: the collapsed navigation's Menu button, selects that submit their form, and the search suggestions.
(function () {
  // plotly's mode bar, trimmed to what helps: save as PNG and reset the axes.
  var PLOT_CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtons: [["toImage", "resetScale2d"]],
    toImageButtonOptions: { format: "png", scale: 2 },
  };

  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source) return;
      var fig = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, fig.data, fig.layout, PLOT_CONFIG);
      el.dataset.drawn = "1";
    });
  }

  function hideSuggestions() {
    var box = document.getElementById("search-suggestions");
    if (box) box.innerHTML = "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    document.documentElement.classList.add("js");
    var toggle = document.querySelector(".nav-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
        document.getElementById(toggle.getAttribute("aria-controls")).classList.toggle("open", open);
      });
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") hideSuggestions();
    });
    document.addEventListener("click", function (event) {
      if (!event.target.closest(".site-search")) hideSuggestions();
    });
  });
  // <select data-submit-on-change> submits its form (no inline handlers under the Content-Security-Policy).
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-submit-on-change]")) event.target.form.submit();
  });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt); });
})();
