// Draw the figures the analysis stored (Plotly JSON embedded with json_script).
// Clicking a theme's bar opens that theme's verbatims; the camera icon saves a PNG.
(function () {
  if (!window.Plotly) return;
  document.querySelectorAll(".gs-chart").forEach(function (element) {
    var source = document.getElementById(element.dataset.figure);
    if (!source) return;
    var figure = JSON.parse(source.textContent);
    var config = {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d"],
      toImageButtonOptions: { format: "png", filename: element.id, scale: 2 },
    };
    Plotly.newPlot(element, figure.data, figure.layout, config);
    var themeUrl = element.dataset.themeUrl;
    if (themeUrl) {
      element.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (!point || point.customdata === undefined) return;
        window.location.href = themeUrl.replace(/\/0\/$/, "/" + point.customdata + "/");
      });
    }
  });
})();
