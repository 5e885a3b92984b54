// Facilitator screen: refresh how many leaders answered (and predicted), without reloading the page.
(function () {
  var root = document.getElementById("session");
  var counter = document.getElementById("live-count");
  if (!root || !counter || root.dataset.status !== "open") return;
  var url = root.dataset.statusUrl;
  var predicted = document.querySelectorAll("[data-predicted]");
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        counter.textContent = data.submitted;
        predicted.forEach(function (element) {
          var value = data.predicted && data.predicted[element.dataset.predicted];
          if (value !== undefined) element.textContent = value;
        });
        var shown = Array.prototype.map.call(predicted, function (element) { return element.dataset.predicted; });
        // Predictions switched on or off elsewhere, or the session closed: the page changes shape.
        if (data.status !== "open" || (data.predicting || []).join() !== shown.join()) { window.location.reload(); return; }
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 3000);
})();
