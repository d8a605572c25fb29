"""What operators see: one JSON log line per request (``logs``), Prometheus metrics
(``metrics``), and the facts about a request that both use (``requests``)."""
