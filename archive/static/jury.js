// The juror's page: keyboard shortcuts (J/N or 1–5 to vote, ←/→ to move). The page works without this file.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var found = null;
    document.querySelectorAll(".judge [data-key]").forEach(function (element) {
      if (element.getAttribute("data-key") === key) found = element;
    });
    if (!found) return;
    event.preventDefault();
    found.click();
  });
})();
