"""MindHarbor: a self-hostable behavioral health EHR backend speaking Parse Server's REST dialect."""

__version__ = "0.1.0"
__all__ = ["__version__"]
