// Behaviour the templates ask for by data attribute (the Content Security Policy
// allows no inline handlers): a confirmation before a form with data-confirm is
// sent, and printing from a button with data-print.
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
