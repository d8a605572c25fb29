// MindHarbor's GraphiQL page: configuration comes from data attributes, so the page needs no
// inline script and a strict Content-Security-Policy holds.
//
// Introspection (the schema behind the docs and autocompletion) is for the master key unless
// the server sets MINDHARBOR_GRAPHQL_PUBLIC_INTROSPECTION=true: put X-Parse-Master-Key in the
// Headers tab, then press "Re-fetch GraphQL schema" (or Shift-Ctrl-R). Queries run either way,
// with whatever session token or key the Headers tab holds.
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
        "# Parse Server's GraphQL API. Add X-Parse-Session-Token (a user) or\n" +
        "# X-Parse-Master-Key in the Headers tab below; with the master key, re-fetch the\n" +
        "# schema (the refresh button on the left) for the docs and autocompletion.\n" +
        "query Viewer {\n  viewer {\n    user {\n      id\n      username\n    }\n  }\n}\n",
    })
  );
})();
