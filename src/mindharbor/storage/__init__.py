"""Storage: the schema registry, the SQL tables it implies, the query compiler and the repository."""
