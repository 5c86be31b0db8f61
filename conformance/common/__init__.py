"""Helpers shared by the Python conformance drivers (see messages.md for the message format)."""
