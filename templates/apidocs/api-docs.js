// Starts Swagger UI on the API's own OpenAPI document (served beside this page).
window.ui = SwaggerUIBundle({
  url: '/api/docs/openapi.yaml',
  dom_id: '#swagger-ui',
  deepLinking: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  tryItOutEnabled: false,
  validatorUrl: null, // no badge from validator.swagger.io: the page calls no other host
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout'
});
