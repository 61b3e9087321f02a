// Copy buttons: <button type="button" class="copy-button" data-copy="..." hidden>Copy</button>
// next to shortened hashes, transaction ids and addresses (chain/templatetags/chain_links.py)
// and the bank details of "Add funds". They are hidden until this script shows them (no
// script, no button that does nothing). Delegated from the document, so buttons that HTMX
// swaps in work too. A static file: the CSP allows no inline script.
(function () {
  if (window.rwaCopyButtons) return; // loaded once even where a page also names it
  window.rwaCopyButtons = true;

  function reveal(root) {
    var buttons = (root || document).querySelectorAll("button.copy-button[data-copy][hidden]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  }

  function feedback(button, ok) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = ok ? "Copied" : "Select and copy";
    window.setTimeout(function () { button.textContent = button.dataset.label; }, 1500);
  }

  function selectNextTo(button) {
    var holder = button.parentNode;
    var target = holder && holder.querySelector("code, .funding-value");
    if (!target || !window.getSelection) return false;
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("button.copy-button[data-copy]") : null;
    if (!button) return;
    evt.preventDefault();
    var text = button.getAttribute("data-copy");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { feedback(button, true); },
        function () { feedback(button, selectNextTo(button)); }
      );
    } else {
      // Plain-HTTP demo: no clipboard API; select the value so it can be copied.
      feedback(button, selectNextTo(button));
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  } else {
    reveal(document);
  }
  document.addEventListener("htmx:afterSettle", function (evt) { reveal(evt.target); });
})();
