// The facilitator's reveal: one step at a time on the projector. → / Space / Enter /
// Page Down or a click go on; ← / Backspace / Page Up go back; Home and End jump;
// F toggles full screen. The step is kept in the address (#step-N), so a reload
// stays where it was. Without this script every step shows, one below the other.
(function () {
  var root = document.getElementById("reveal");
  if (!root) return;
  var steps = Array.prototype.slice.call(root.querySelectorAll(".reveal-step"));
  if (!steps.length) return;
  var progress = document.getElementById("reveal-progress");
  var previous = document.getElementById("reveal-previous");
  var next = document.getElementById("reveal-next");
  var fullscreen = document.getElementById("reveal-fullscreen");
  var current = 0;

  function fromHash() {
    var match = /^#step-(\d+)$/.exec(window.location.hash);
    var n = match ? parseInt(match[1], 10) - 1 : 0;
    return Math.min(Math.max(n, 0), steps.length - 1);
  }

  function show(n) {
    current = Math.min(Math.max(n, 0), steps.length - 1);
    steps.forEach(function (step, index) {
      var active = index === current;
      step.classList.toggle("reveal-current", active);
      step.setAttribute("aria-hidden", active ? "false" : "true");
    });
    progress.textContent = (current + 1) + " / " + steps.length + " · " + (steps[current].dataset.title || "");
    previous.disabled = current === 0;
    next.disabled = current === steps.length - 1;
    root.dataset.step = String(current + 1);
    window.scrollTo(0, 0);
    if (window.location.hash !== "#step-" + (current + 1)) {
      window.history.replaceState(null, "", "#step-" + (current + 1));
    }
  }

  root.classList.add("reveal-js");
  [previous, next].forEach(function (button) { button.classList.remove("d-none"); });
  previous.addEventListener("click", function () { show(current - 1); });
  next.addEventListener("click", function () { show(current + 1); });

  if (fullscreen && document.documentElement.requestFullscreen) {
    fullscreen.classList.remove("d-none");
    fullscreen.addEventListener("click", toggleFullscreen);
  }
  function toggleFullscreen() {
    if (!document.documentElement.requestFullscreen) return;
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(function () {});
    } else {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }
  document.addEventListener("fullscreenchange", function () {
    if (fullscreen) fullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var key = event.key;
    if (key === "ArrowRight" || key === "PageDown" || key === " " || key === "Enter" || key === "ArrowDown") {
      if (tag === "BUTTON" || tag === "A") { if (key === "Enter" || key === " ") return; }
      show(current + 1);
    } else if (key === "ArrowLeft" || key === "PageUp" || key === "Backspace" || key === "ArrowUp") {
      show(current - 1);
    } else if (key === "Home") {
      show(0);
    } else if (key === "End") {
      show(steps.length - 1);
    } else if (key === "f" || key === "F") {
      toggleFullscreen();
    } else {
      return;
    }
    event.preventDefault();
  });

  // A click anywhere on the stage (not on a link or button) goes on.
  root.addEventListener("click", function (event) {
    if (event.target.closest("a, button")) return;
    show(current + 1);
  });
  window.addEventListener("hashchange", function () { show(fromHash()); });

  show(fromHash());
})();
