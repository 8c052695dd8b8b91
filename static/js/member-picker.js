/* The member picker (members.widgets.MemberSelect): an ARIA combobox whose options htmx loads.
 *
 * htmx fetches the options partial into the listbox as the user types; this script adds
 * what htmx does not: keyboard navigation (up, down, enter, escape), choosing with the
 * mouse, the clear button, and keeping the hidden input (the submitted user id) in step.
 * Everything is delegated from `document`, so pickers added later work too.
 */
(function () {
  "use strict";

  var OPTION = '[role="option"]:not([aria-disabled="true"])';

  function pickerOf(element) {
    var picker = element && element.closest ? element.closest("[data-member-picker]") : null;
    if (!picker) return null;
    return {
      value: picker.querySelector("[data-picker-value]"),
      input: picker.querySelector("[data-picker-input]"),
      listbox: picker.querySelector("[data-picker-listbox]"),
      chosen: picker.querySelector("[data-picker-chosen]"),
      status: picker.querySelector("[data-picker-status]"),
      clear: picker.querySelector("[data-picker-clear]"),
      root: picker,
    };
  }

  function options(p) {
    return Array.prototype.slice.call(p.listbox.querySelectorAll(OPTION));
  }

  function activeOption(p) {
    var id = p.input.getAttribute("aria-activedescendant");
    return id ? document.getElementById(id) : null;
  }

  function setActive(p, option) {
    var current = activeOption(p);
    if (current) current.setAttribute("aria-selected", "false");
    if (option) {
      option.setAttribute("aria-selected", "true");
      p.input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      p.input.setAttribute("aria-activedescendant", "");
    }
  }

  function isOpen(p) {
    return !p.listbox.hidden;
  }

  function open(p) {
    if (!p.listbox.children.length) return;
    p.listbox.hidden = false;
    p.input.setAttribute("aria-expanded", "true");
  }

  function close(p) {
    setActive(p, null);
    p.listbox.hidden = true;
    p.input.setAttribute("aria-expanded", "false");
  }

  function move(p, step) {
    var all = options(p);
    if (!all.length) return;
    var index = all.indexOf(activeOption(p));
    if (index < 0) index = step > 0 ? 0 : all.length - 1;
    else index = (index + step + all.length) % all.length;
    setActive(p, all[index]);
  }

  function showChosen(p, data) {
    // Built with textContent: names are user data and must never become markup.
    p.chosen.replaceChildren();
    if (!data) return;
    var avatar = document.createElement("img");
    avatar.className = "mp-avatar";
    avatar.src = data.avatar;
    avatar.alt = "";
    avatar.width = avatar.height = 24;
    var name = document.createElement("strong");
    name.textContent = data.label;
    var text = document.createElement("span");
    text.append(name, " @" + data.username + " · " + data.value);
    p.chosen.append(avatar, " ", text);
  }

  function setValue(p, data) {
    p.value.value = data ? data.value : "";
    p.input.value = data ? data.label : "";
    p.input.dataset.chosenLabel = p.input.value;
    p.clear.hidden = !data;
    showChosen(p, data);
    p.value.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function choose(p, option) {
    setValue(p, {
      value: option.dataset.value,
      label: option.dataset.label,
      username: option.dataset.username,
      avatar: option.dataset.avatar,
    });
    close(p);
  }

  document.addEventListener("keydown", function (event) {
    if (!event.target.matches || !event.target.matches("[data-picker-input]")) return;
    var p = pickerOf(event.target);
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp":
        event.preventDefault();
        open(p);
        if (isOpen(p)) move(p, event.key === "ArrowDown" ? 1 : -1);
        break;
      case "Enter":
        if (!isOpen(p)) return; // a closed picker lets Enter submit the form
        event.preventDefault();
        if (activeOption(p)) choose(p, activeOption(p));
        else close(p);
        break;
      case "Escape":
        if (isOpen(p)) {
          event.preventDefault();
          close(p);
        }
        break;
    }
  });

  // Keep the focus in the input while an option is clicked.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("[data-picker-listbox]")) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var option = event.target.closest("[data-picker-listbox] " + OPTION);
    if (option) choose(pickerOf(option), option);
    var clear = event.target.closest("[data-picker-clear]");
    if (clear) {
      var p = pickerOf(clear);
      setValue(p, null);
      p.input.focus();
    }
  });

  // Leaving the picker closes it; the text goes back to the chosen member (typing only searches).
  document.addEventListener("focusout", function (event) {
    if (!event.target.matches || !event.target.matches("[data-picker-input]")) return;
    var p = pickerOf(event.target);
    if (event.relatedTarget && p.root.contains(event.relatedTarget)) return;
    close(p);
    p.input.value = p.input.dataset.chosenLabel || "";
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var input = event.detail.elt;
    if (!input.matches || !input.matches("[data-picker-input]")) return;
    // The chosen member's name in the box is not a search: show the first members instead.
    var text = input.value.trim();
    event.detail.parameters.q = text === (input.dataset.chosenLabel || "").trim() ? "" : text;
  });

  // A 400 (query too long) carries a message for the listbox: show it like any answer.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.matches && target.matches("[data-picker-listbox]") && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var listbox = event.detail.target;
    if (!listbox.matches || !listbox.matches("[data-picker-listbox]")) return;
    var p = pickerOf(listbox);
    var all = listbox.querySelectorAll('[role="option"]');
    for (var i = 0; i < all.length; i++) all[i].id = listbox.id + "-option-" + i;
    p.input.setAttribute("aria-activedescendant", "");
    if (document.activeElement === p.input) open(p);
    var found = options(p).length;
    p.status.textContent = found
      ? found + (found === 1 ? " member found." : " members found.")
      : listbox.textContent.trim();
  });
})();
