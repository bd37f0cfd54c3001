// The exhibition editor: reorder the photos by drag and drop (at the handle ⠿) or with the ↑/↓ buttons without
// reloading the page. Each change sends the whole order of item ids to the server and is announced in the
// aria-live region. Only a convenience: without this script the ↑/↓ buttons are plain forms and work the same.
// Every text shown comes from the list's data-text-* attributes (the template writes them in the page's language;
// {title}, {position}, {total} and {status} are filled in here).
(function () {
  "use strict";
  var list = document.getElementById("ex-items");
  var live = document.getElementById("order-status");
  if (!list || !live || !window.fetch) { return; }
  var url = list.getAttribute("data-order-url");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var hidden = document.querySelector('input[name="csrf_token"]');
  var token = meta ? meta.getAttribute("content") : (hidden ? hidden.value : "");
  var problem = null;  // a visible message when saving failed
  var saving = false;
  var again = false;
  var dragged = null;

  function text(name, values) {
    var result = list.getAttribute("data-text-" + name) || "";
    Object.keys(values || {}).forEach(function (key) { result = result.split("{" + key + "}").join(String(values[key])); });
    return result;
  }

  list.classList.add("dnd");

  function items() { return Array.prototype.slice.call(list.querySelectorAll(":scope > .ex-item")); }
  function ids() { return items().map(function (li) { return Number(li.getAttribute("data-item-id")); }); }

  function announce(text) {
    // Emptying first makes screen readers read the same sentence again.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function renumber() {
    var all = items();
    all.forEach(function (li, index) {
      var pos = li.querySelector(".ex-pos");
      if (pos) { pos.textContent = String(index + 1); }
      var up = li.querySelector('.ex-move[data-direction="up"]');
      var down = li.querySelector('.ex-move[data-direction="down"]');
      if (up) { setDisabled(up, index === 0); }
      if (down) { setDisabled(down, index === all.length - 1); }
    });
  }

  function setDisabled(button, off) {
    if (off) { button.setAttribute("aria-disabled", "true"); } else { button.removeAttribute("aria-disabled"); }
  }

  function where(li) {
    var all = items();
    return text("moved", { title: li.getAttribute("data-title") || "", position: all.indexOf(li) + 1, total: all.length });
  }

  function flash(li) {
    li.classList.remove("moved");
    void li.offsetWidth;  // restart the animation
    li.classList.add("moved");
  }

  function showProblem(text) {
    if (!problem) {
      problem = document.createElement("div");
      problem.className = "refusal";
      problem.setAttribute("role", "alert");
      list.parentNode.insertBefore(problem, list);
    }
    problem.innerHTML = "";
    var p = document.createElement("p");
    p.className = "flash error";
    p.textContent = text + " ";
    var reload = document.createElement("button");
    reload.type = "button";
    reload.className = "link";
    reload.textContent = text("reload");
    reload.addEventListener("click", function () { window.location.reload(); });
    p.appendChild(reload);
    problem.appendChild(p);
  }

  // One request at a time, always with the newest order: fast clicks cannot arrive out of order.
  function save() {
    if (saving) { again = true; return; }
    saving = true;
    var sent = ids();
    window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ item_ids: sent })
    }).then(function (response) {
      if (response.ok) { return null; }
      return response.json().then(function (body) {
        var lang = document.documentElement.getAttribute("lang") === "en" ? "en" : "de";
        return (body && body.error && (body.error[lang] || body.error.de)) || text("not-saved");
      }, function () { return text("not-saved-status", { status: response.status }); });
    }, function () {
      return text("offline");
    }).then(function (error) {
      saving = false;
      if (error) {
        again = false;
        showProblem(error);
        announce(error);
        return;
      }
      // The order this request saved: a move made meanwhile is saved by the next request, not claimed here.
      list.setAttribute("data-saved", sent.join(","));
      if (again) { again = false; save(); }
    });
  }

  function moved(li, focus) {
    renumber();
    flash(li);
    if (focus) {
      focus.focus();
      li.scrollIntoView({ block: "nearest" });
    }
    announce(where(li));
    save();
  }

  // ↑ and ↓: the forms stay the same; with this script they move the item here and save the whole order.
  list.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("ex-move-form")) { return; }
    event.preventDefault();
    var li = form.closest(".ex-item");
    var button = form.querySelector(".ex-move");
    var up = button.getAttribute("data-direction") === "up";
    var title = li.getAttribute("data-title") || "";
    var neighbour = up ? li.previousElementSibling : li.nextElementSibling;
    if (!neighbour) {
      announce(text(up ? "first" : "last", { title: title }));
      return;
    }
    list.insertBefore(li, up ? neighbour : neighbour.nextElementSibling);
    moved(li, button);
  });

  // Drag and drop at the handle.
  list.addEventListener("dragstart", function (event) {
    var handle = event.target.closest && event.target.closest(".ex-handle");
    if (!handle) { return; }
    dragged = handle.closest(".ex-item");
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.getAttribute("data-item-id"));
    if (event.dataTransfer.setDragImage) { event.dataTransfer.setDragImage(dragged, 20, 20); }
  });

  function clearMarks() {
    items().forEach(function (li) { li.classList.remove("drop-before", "drop-after"); });
  }

  function dropPlace(event) {
    var li = event.target.closest && event.target.closest(".ex-item");
    if (!li || li === dragged || li.parentNode !== list) { return null; }
    var box = li.getBoundingClientRect();
    return { li: li, after: event.clientY > box.top + box.height / 2 };
  }

  list.addEventListener("dragover", function (event) {
    if (!dragged) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    var place = dropPlace(event);
    clearMarks();
    if (place) { place.li.classList.add(place.after ? "drop-after" : "drop-before"); }
  });

  list.addEventListener("dragleave", function (event) {
    if (event.target === list) { clearMarks(); }
  });

  list.addEventListener("drop", function (event) {
    if (!dragged) { return; }
    event.preventDefault();
    var place = dropPlace(event);
    clearMarks();
    if (!place) { return; }
    var before = ids().join(",");
    list.insertBefore(dragged, place.after ? place.li.nextElementSibling : place.li);
    if (ids().join(",") !== before) { moved(dragged, null); }
  });

  list.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearMarks();
  });
}());
