// "Add another item" for each question of an answer sheet (a Django formset).
// Without this script the sheet still works with the rows it was given.
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
})();
