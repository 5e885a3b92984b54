// Facilitator screen: refresh the count of leaders who answered, without reloading the page.
(function () {
  var root = document.getElementById("session");
  var counter = document.getElementById("live-count");
  if (!root || !counter || root.dataset.status !== "open") return;
  var url = root.dataset.statusUrl;
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        counter.textContent = data.submitted;
        if (data.status !== "open") { window.location.reload(); return; }
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 3000);
})();
