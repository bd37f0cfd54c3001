// The gallery's lightbox: a click on a photo link carrying data-lightbox opens its large preview in the page's
// <dialog id="lightbox">, with ←/→ and swipes to the neighbours, Esc to close, focus kept inside and given back to
// the link. Without this script (or without <dialog>) the links simply go to the photo pages.
(function () {
  "use strict";

  const dialog = document.getElementById("lightbox");
  if (!dialog || typeof dialog.showModal !== "function") {
    return;
  }
  const links = Array.from(document.querySelectorAll("a[data-lightbox]"));
  if (!links.length) {
    return;
  }
  const image = dialog.querySelector(".lightbox-image");
  const source = dialog.querySelector("source");
  const title = dialog.querySelector(".lightbox-title");
  const position = dialog.querySelector(".lightbox-position");
  const pageLink = dialog.querySelector(".lightbox-link");
  const previous = dialog.querySelector(".lightbox-prev");
  const next = dialog.querySelector(".lightbox-next");
  const close = dialog.querySelector(".lightbox-close");
  const positionText = dialog.querySelector(".lightbox-texts").dataset.position || "{num} / {total}";
  let current = -1;
  let opener = null;

  function show(index) {
    current = (index + links.length) % links.length;
    const link = links[current];
    const data = link.dataset;
    source.srcset = data.lightboxWebp || "";
    if (!data.lightboxWebp) {
      source.removeAttribute("srcset");
    }
    image.src = data.lightbox;
    image.alt = data.alt || "";
    if (data.width && data.height) {
      image.width = Number(data.width);
      image.height = Number(data.height);
    }
    title.textContent = data.title || "";
    pageLink.href = data.page || link.getAttribute("href");
    const single = links.length < 2;
    previous.hidden = single;
    next.hidden = single;
    position.textContent = single ? "" : positionText.replace("{num}", String(current + 1))
      .replace("{total}", String(links.length));
  }

  function open(index, link) {
    opener = link;
    show(index);
    dialog.showModal();
    close.focus();
  }

  links.forEach(function (link, index) {
    link.addEventListener("click", function (event) {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return; // a new tab or window: the photo page, as without script
      }
      event.preventDefault();
      open(index, link);
    });
  });

  previous.addEventListener("click", function () { show(current - 1); });
  next.addEventListener("click", function () { show(current + 1); });
  close.addEventListener("click", function () { dialog.close(); });

  dialog.addEventListener("close", function () {
    image.src = "data:,";
    if (opener) {
      opener.focus();
      opener = null;
    }
  });

  // A click on the backdrop (the dialog itself, outside its content) closes it.
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog) {
      dialog.close();
    }
  });

  dialog.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") {
      event.preventDefault();
      show(current - 1);
    } else if (event.key === "ArrowRight") {
      event.preventDefault();
      show(current + 1);
    } else if (event.key === "Tab") {
      // Keep focus inside: the modal dialog makes the page inert, this wraps around its own controls.
      const focusable = Array.from(dialog.querySelectorAll("a[href], button:not([hidden])"))
        .filter(function (element) { return !element.hidden && element.offsetParent !== null; });
      if (!focusable.length) {
        return;
      }
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
    // Esc: the dialog's own "cancel" closes it, and the close handler returns focus.
  });

  // Swipes (touch, pen or mouse drag) on the picture: left for the next photo, right for the previous one.
  let startX = null;
  let startY = null;
  image.addEventListener("pointerdown", function (event) {
    startX = event.clientX;
    startY = event.clientY;
  });
  image.addEventListener("pointerup", function (event) {
    if (startX === null) {
      return;
    }
    const dx = event.clientX - startX;
    const dy = event.clientY - startY;
    startX = null;
    if (Math.abs(dx) > 40 && Math.abs(dx) > Math.abs(dy) && links.length > 1) {
      show(dx < 0 ? current + 1 : current - 1);
    }
  });
  image.addEventListener("pointercancel", function () { startX = null; });
  image.addEventListener("dragstart", function (event) { event.preventDefault(); });
}());
