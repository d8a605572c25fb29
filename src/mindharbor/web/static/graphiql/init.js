// MindHarbor's GraphiQL page: configuration comes from data attributes, so the page needs no
// inline script and a strict Content-Security-Policy holds.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = new URL(root.dataset.endpoint, window.location.href).toString();
  var headers = { "X-Parse-Application-Id": root.dataset.appId };
  var fetcher = GraphiQL.createFetcher({ url: endpoint });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: JSON.stringify(headers, null, 2),
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      defaultQuery:
        "# Add X-Parse-Session-Token (or X-Parse-Master-Key) in the Headers tab below.\n" +
        "query Me {\n  me {\n    objectId\n    username\n  }\n}\n",
    })
  );
})();
