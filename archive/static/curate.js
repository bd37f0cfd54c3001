// The review queue: a "select all on this page" box. Only a convenience: the page works without it.
(function () {
  "use strict";
  var form = document.getElementById("bulk");
  if (!form) { return; }
  var table = form.querySelector("table");
  var boxes = form.querySelectorAll('input[type="checkbox"][name="photo_ids"]');
  if (!table || !boxes.length) { return; }
  var line = document.createElement("p");
  line.className = "pick-all";
  var all = document.createElement("input");
  all.type = "checkbox";
  all.id = "pick-all";
  var label = document.createElement("label");
  label.htmlFor = "pick-all";
  label.textContent = "Alle Fotos auf dieser Seite auswählen";
  line.appendChild(all);
  line.appendChild(label);
  table.parentNode.insertBefore(line, table);
  function sync() {
    var checked = 0;
    for (var i = 0; i < boxes.length; i++) { if (boxes[i].checked) { checked++; } }
    all.checked = checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
  all.addEventListener("change", function () {
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
  });
  for (var i = 0; i < boxes.length; i++) { boxes[i].addEventListener("change", sync); }
  sync();
}());
