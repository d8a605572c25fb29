"""MindHarbor: a self-hostable behavioral health EHR backend in the Parse REST dialect."""

__version__ = "0.1.0"
__all__ = ["__version__"]
