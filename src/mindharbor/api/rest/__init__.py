"""The Parse REST dialect."""
