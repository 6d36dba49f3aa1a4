// Starts Swagger UI on this server's OpenAPI document. A file, not an inline script, so the
// docs page can be served with a Content-Security-Policy that allows only this origin.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
