"""Storage: schema registry, the tables it implies, the query compiler, the repository."""
