// A "select all on this page" box for every form marked data-pick (the review queue, the grid, search hits, a
// shortlist's photos; data-pick names the label, in the page's language: without it there is no box;
// data-pick-min says how many boxes it takes), and Enter in the "new list" field puts the selection on the list (in the review queue the form's first button
// would otherwise be "publish"). Only conveniences: every page works without this script.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-pick]");
  for (var f = 0; f < forms.length; f++) { pickAll(forms[f]); }

  function pickAll(form) {
    var boxes = form.querySelectorAll('input[type="checkbox"][name="photo_ids"]');
    var list = form.querySelector("ul, table");
    var fewest = parseInt(form.getAttribute("data-pick-min") || "2", 10);
    var text = form.getAttribute("data-pick");
    if (!list || !text || boxes.length < fewest) { return; }
    var line = document.createElement("p");
    line.className = "pick-all";
    var all = document.createElement("input");
    all.type = "checkbox";
    all.id = "pick-all-" + f;
    var label = document.createElement("label");
    label.htmlFor = all.id;
    label.textContent = text;
    line.appendChild(all);
    line.appendChild(label);
    list.parentNode.insertBefore(line, list);
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
  }

  var names = document.querySelectorAll("input.new-shortlist");
  for (var n = 0; n < names.length; n++) {
    names[n].addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.isComposing) { return; }
      var scope = event.target.closest(".shortlist-fields");
      var button = scope && scope.querySelector("button[data-shortlist-add]");
      if (!button) { return; }
      event.preventDefault();
      button.click();
    });
  }
}());
