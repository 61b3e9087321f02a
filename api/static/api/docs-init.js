// Starts Swagger UI on /api/v1/docs with the settings the page carries as JSON (a static
// file: the CSP allows no inline script). The API authenticates with bearer tokens only,
// so no CSRF token is sent.
(function () {
  var config = JSON.parse(document.getElementById("swagger-settings").textContent);
  config.dom_id = "#swagger-ui";
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  window.ui = SwaggerUIBundle(config);
})();
