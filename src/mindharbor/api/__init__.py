"""The faces of MindHarbor; each one is thin and calls the same repository."""
