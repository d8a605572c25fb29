// MindHarbor's API docs page: Swagger UI pointed at the server's own OpenAPI document.
// validatorUrl: null keeps the page from calling an online validator (it must work offline).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var appId = root.dataset.appId;
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    onComplete: function () {
      window.ui.preauthorizeApiKey("ApplicationId", appId);
    },
  });
})();
