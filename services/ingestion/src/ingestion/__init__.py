"""Reference ingestion worker."""
