// The answer sheet: "Add another item" for each question (a Django formset); without
// this script the sheet still works with the rows it was given. On a personal
// invitation page, also the "started" beacon.
(function () {
  document.querySelectorAll(".answer-question").forEach(function (section) {
    var prefix = section.dataset.prefix;
    var max = parseInt(section.dataset.max, 10);
    var total = section.querySelector("#id_" + prefix + "-TOTAL_FORMS");
    var list = section.querySelector(".answer-items");
    var template = section.querySelector("template.empty-item");
    var button = section.querySelector(".add-item");
    if (!total || !template || !button) return;
    function refresh() { button.classList.toggle("d-none", parseInt(total.value, 10) >= max); }
    button.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      if (index >= max) return;
      var html = template.innerHTML.replace(/__prefix__/g, index).replace(/__num__/g, index + 1);
      list.insertAdjacentHTML("beforeend", html);
      total.value = index + 1;
      var input = list.lastElementChild.querySelector("input");
      if (input) input.focus();
      refresh();
    });
    refresh();
  });
  var errors = document.getElementById("sheet-errors");
  if (errors) errors.focus();

  // A personal invitation page tells the server once that answering has begun
  // (the funnel's "started"); losing this beacon loses nothing else.
  var sheet = document.querySelector("form[data-started-url]");
  if (sheet) {
    sheet.addEventListener("input", function () {
      var csrf = sheet.querySelector("input[name=csrfmiddlewaretoken]");
      fetch(sheet.dataset.startedUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf ? csrf.value : "" },
        keepalive: true,
      }).catch(function () {});
    }, { once: true });
  }
})();
