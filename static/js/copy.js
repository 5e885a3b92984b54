// Copy buttons: <button data-copy="#input-id">. Falls back to selecting the text.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  var done = function () { var label = button.textContent; button.textContent = "Copied"; setTimeout(function () { button.textContent = label; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done);
  } else {
    try { document.execCommand("copy"); done(); } catch (e) { /* text stays selected for Ctrl+C */ }
  }
});
