"""The GraphQL face: a schema generated from the registry over the same object service as REST.

``routes(server)`` gives the Starlette routes: ``/graphql`` (POST and GET for queries, GraphiQL
for a browser) and ``/static`` (the packaged playground assets).
"""

from __future__ import annotations

from mindharbor.api.graphql.endpoint import routes

__all__ = ["routes"]
