"""Reference HTTP API service."""
