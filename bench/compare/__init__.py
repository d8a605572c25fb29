"""MindHarbor against Parse Server, side by side (``make bench-compare``)."""
