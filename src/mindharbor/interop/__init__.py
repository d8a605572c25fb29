"""Data in from other systems: ``mindharbor import-parse`` (a Parse Server / Back4app export)."""
