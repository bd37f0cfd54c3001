// The upload page, enhanced: drop many files onto the drop zone (or pick them), then each file is sent on its
// own through the chunk API (/api/uploads) in pieces of a few MB, with its own progress bar and its own answer:
// the photo's links, or the archive's refusal in words. A dropped connection or a server error is tried again
// from the offset the archive has (automatically a few times, then with a "try again" button); a refusal is
// final. Every text comes from the page (the JSON block #upload-texts), so it is in the page's language.
// Without this script (or without XMLHttpRequest) the form is a plain multi-file post and works the same.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var textsBlock = document.getElementById("upload-texts");
  if (!form || !textsBlock || !window.XMLHttpRequest || !window.FormData || !window.JSON ||
      !window.Blob || !Blob.prototype.slice) { return; }
  var T = JSON.parse(textsBlock.textContent);
  var input = document.getElementById("photos");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-list");
  var problem = document.getElementById("upload-problem");
  var submit = document.getElementById("upload-submit");
  var done = document.getElementById("upload-done");
  var api = form.getAttribute("data-api");
  var tokenField = form.querySelector('input[name="csrf_token"]');
  var token = tokenField ? tokenField.value : "";
  var PARALLEL = 2;
  var AUTO_RETRIES = 4;
  var items = [];
  var started = false;

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function megabytes(bytes) {
    var lang = document.documentElement.lang || undefined;
    var value = bytes / 1000000;
    var shown = value < 1 ? value.toLocaleString(lang, { maximumSignificantDigits: 2 })
      : value.toLocaleString(lang, { maximumFractionDigits: value < 10 ? 1 : 0 });
    return fill(T.megabytes, { num: shown });
  }

  function el(tag, classes, text) {
    var node = document.createElement(tag);
    if (classes) { node.className = [].concat(classes).join(" "); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function link(href, text) {
    var a = el("a", "", text);
    a.href = href;
    return a;
  }

  // -- choosing files ---------------------------------------------------------------------------------------

  input.removeAttribute("required");  // the script keeps the list and checks for an empty one itself
  form.classList.add("enhanced");

  function addFiles(files) {
    if (started) { return; }
    for (var i = 0; i < files.length; i++) { addItem(files[i]); }
    list.hidden = items.length === 0;
    problem.hidden = true;
  }

  function addItem(file) {
    var item = { file: file, state: "waiting", uploadId: null, offset: 0, tries: 0, result: null };
    var li = el("li", ["upload-item", "waiting"]);
    var name = el("strong", "name", file.name);
    var size = el("span", ["size", "secondary"], megabytes(file.size));
    var bar = el("progress", "bar");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", file.name);
    var status = el("span", "status", T.waiting);
    var remove = el("button", ["link", "remove"], T.remove);
    remove.type = "button";
    remove.setAttribute("aria-label", fill(T.removeName, { name: file.name }));
    remove.addEventListener("click", function () {
      items.splice(items.indexOf(item), 1);
      list.removeChild(li);
      list.hidden = items.length === 0;
    });
    li.appendChild(name);
    li.appendChild(size);
    li.appendChild(bar);
    li.appendChild(status);
    li.appendChild(remove);
    list.appendChild(li);
    item.li = li;
    item.bar = bar;
    item.status = status;
    item.remove = remove;
    items.push(item);
  }

  function takeChosenFiles() {
    if (!input.files || !input.files.length) { return; }
    addFiles(input.files);
    input.value = "";  // choosing again adds more files instead of replacing the list
  }

  input.addEventListener("change", takeChosenFiles);
  // On a slow connection people pick their photos before this script has arrived: take those too, or the
  // upload would say that no photo was chosen.
  takeChosenFiles();

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      if (!event.dataTransfer || Array.prototype.indexOf.call(event.dataTransfer.types, "Files") < 0) { return; }
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("over");
    });
  });
  ["dragleave", "dragend"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files) { addFiles(event.dataTransfer.files); }
  });
  // A file dropped beside the zone must not replace the page with the photo.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  // -- talking to the archive --------------------------------------------------------------------------------

  function request(method, url, body, headers, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Accept", "application/json");
      if (token) { xhr.setRequestHeader("X-CSRFToken", token); }
      Object.keys(headers || {}).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onProgress && xhr.upload) {
        xhr.upload.addEventListener("progress", function (event) { onProgress(event.loaded); });
      }
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (ignored) { data = null; }
        resolve({ status: xhr.status, data: data });
      };
      xhr.onerror = xhr.ontimeout = xhr.onabort = function () { resolve({ status: 0, data: null }); };
      xhr.send(body);
    });
  }

  function batch() {
    var fields = ["association", "credit", "licence", "people", "minors", "place", "tags"];
    var data = {};
    fields.forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && field.value) { data[name] = field.value; }
    });
    return data;
  }

  function showProgress(item, sent) {
    var size = item.file.size || 1;
    item.bar.value = Math.min(sent / size, 1);
    item.status.textContent = fill(T.progress, { done: megabytes(sent), total: megabytes(item.file.size) });
  }

  function setState(item, state) {
    item.state = state;
    item.li.className = ["upload-item", state].join(" ");
  }

  function finalAnswer(item, data) {
    // The archive's answer for a complete file: archived, a duplicate, or refused.
    var result = data && data.result;
    item.result = result;
    item.status.textContent = "";
    item.bar.value = 1;
    if (result.outcome === "archived") {
      setState(item, "archived");
      item.status.appendChild(document.createTextNode(T.archived + " – "));
      item.status.appendChild(link(result.photo_url, T.view));
      item.status.appendChild(document.createTextNode(" · "));
      item.status.appendChild(link(result.edit_url, T.edit));
    } else if (result.outcome === "duplicate") {
      setState(item, "duplicate");
      if (result.photo_url) {
        item.status.appendChild(document.createTextNode(T.duplicate + " – "));
        item.status.appendChild(link(result.photo_url, T.duplicateLink));
      } else {
        item.status.textContent = T.duplicateOther;
      }
    } else {
      refused(item, result.message);
    }
  }

  function refused(item, message) {
    setState(item, "refused");
    item.result = { outcome: "refused" };
    item.status.textContent = message;
    item.status.setAttribute("role", "alert");
  }

  function messageOf(answer) {
    var data = answer.data;
    if (data && data.message) { return data.message; }
    if (data && data.error) {
      return (document.documentElement.lang === "en" ? data.error.en : data.error.de) || "";
    }
    return "";
  }

  // A network error or a 5xx: worth trying again. Anything else the archive said is final.
  function retryable(answer) { return answer.status === 0 || answer.status >= 500; }

  function failed(item, answer) {
    item.tries += 1;
    if (item.tries <= AUTO_RETRIES) {
      setState(item, "retrying");
      item.status.textContent = answer.status === 0 ? T.retrying
        : (messageOf(answer) || fill(T.serverError, { status: answer.status }));
      var wait = Math.min(30, Math.pow(2, item.tries)) * 1000;
      return new Promise(function (resolve) { window.setTimeout(resolve, wait); }).then(function () {
        return send(item);
      });
    }
    setState(item, "failed");
    item.status.textContent = answer.status === 0 ? T.offline
      : (messageOf(answer) || fill(T.serverError, { status: answer.status }));
    var again = el("button", "retry", T.retry);
    again.type = "button";
    again.setAttribute("aria-label", fill(T.retryName, { name: item.file.name }));
    again.addEventListener("click", function () {
      again.parentNode.removeChild(again);
      item.tries = 0;
      setState(item, "uploading");
      send(item).then(finished);
    });
    item.li.appendChild(again);
    return Promise.resolve();
  }

  function create(item) {
    var body = batch();
    body.filename = item.file.name;
    body.size = item.file.size;
    return request("POST", api, JSON.stringify(body), { "Content-Type": "application/json" }).then(function (answer) {
      if (answer.status === 201 && answer.data) {
        item.uploadId = answer.data.url;
        item.chunk = answer.data.chunk_size || 4194304;
        item.offset = 0;
        return sendChunks(item);
      }
      if (retryable(answer)) { return failed(item, answer); }
      refused(item, messageOf(answer));
      return null;
    });
  }

  function resume(item) {
    // After an error: ask how far the archive got, and go on from there.
    return request("GET", item.uploadId, null, {}).then(function (answer) {
      if (answer.status === 200 && answer.data) {
        if (answer.data.result) { finalAnswer(item, answer.data); return null; }
        item.offset = answer.data.received;
        return sendChunks(item);
      }
      if (answer.status === 404) { item.uploadId = null; return create(item); }  // expired: start again
      return failed(item, answer);
    });
  }

  function sendChunks(item) {
    var size = item.file.size;
    var end = Math.min(item.offset + item.chunk, size);
    var chunk = item.file.slice(item.offset, end);
    var base = item.offset;
    if (end >= size) { item.status.textContent = T.checking; }
    showProgress(item, base);
    return request("PATCH", item.uploadId, chunk, {
      "Upload-Offset": String(base),
      "Content-Type": "application/offset+octet-stream"
    }, function (loaded) { showProgress(item, base + loaded); }).then(function (answer) {
      var data = answer.data;
      if (data && data.result) { finalAnswer(item, data); return null; }
      if (answer.status === 200 && data) {
        item.tries = 0;
        item.offset = data.received;
        if (item.offset >= size) { item.status.textContent = T.checking; }
        return sendChunks(item);
      }
      if (answer.status === 409 && data && typeof data.offset === "number") {
        if (data.offset >= size) { return resume(item); }
        item.offset = data.offset;
        return sendChunks(item);
      }
      if (retryable(answer)) { return failed(item, answer); }
      refused(item, messageOf(answer));
      return null;
    });
  }

  function send(item) {
    setState(item, "uploading");
    return item.uploadId ? resume(item) : create(item);
  }

  // -- the batch ---------------------------------------------------------------------------------------------

  function count(outcome) {
    return items.filter(function (item) { return item.result && item.result.outcome === outcome; }).length;
  }

  function finished() {
    var pending = items.filter(function (item) {
      return item.state === "waiting" || item.state === "uploading" || item.state === "retrying";
    });
    if (pending.length) { return; }
    var parts = [fill(T.archivedCount, { num: count("archived") }),
                 fill(T.duplicateCount, { num: count("duplicate") }),
                 fill(T.refusedCount, { num: count("refused") })];
    var failedNow = items.filter(function (item) { return item.state === "failed"; }).length;
    if (failedNow) { parts.push(fill(T.failedCount, { num: failedNow })); }
    done.querySelector(".summary").textContent = parts.join(" · ");
    var grid = document.getElementById("upload-grid");
    var select = form.elements.namedItem("association");
    var name = form.getAttribute("data-association-name");
    var href = form.getAttribute("data-grid");
    if (select && select.value) {
      name = select.options[select.selectedIndex].text;
      href += "?association=" + encodeURIComponent(select.value);
    }
    grid.href = href;
    grid.textContent = fill(T.toGrid, { name: name });
    done.hidden = false;
    problem.hidden = true;
    submit.hidden = true;
  }

  function worker(queue) {
    var item = queue.shift();
    if (!item) { return Promise.resolve(); }
    return send(item).then(function () { finished(); return worker(queue); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (started) { return; }
    if (!items.length) {
      problem.textContent = T.noFiles;
      problem.setAttribute("role", "alert");
      problem.hidden = false;
      return;
    }
    started = true;
    submit.disabled = true;
    input.disabled = true;
    zone.classList.add("locked");
    problem.textContent = T.busy;
    problem.setAttribute("role", "status");
    problem.hidden = false;
    items.forEach(function (item) { item.remove.parentNode.removeChild(item.remove); });
    var queue = items.slice();
    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL, queue.length); i++) { workers.push(worker(queue)); }
    Promise.all(workers).then(finished);
  });
})();
