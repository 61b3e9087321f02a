// The site navigation on a phone: below the breakpoint (static/css/app.css) the links fold
// behind the "Menu" button. Without this script the button stays hidden and the links
// simply wrap. A static file: the CSP allows no inline script.
(function () {
  var nav = document.getElementById("site-nav");
  var button = nav && nav.querySelector("button.nav-toggle");
  if (!button) return;
  nav.classList.add("nav-collapsible");
  button.hidden = false;
  button.addEventListener("click", function () {
    var open = nav.classList.toggle("nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape" && nav.classList.contains("nav-open")) {
      nav.classList.remove("nav-open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
})();
