"""Entry point: ``python -m ingestion`` runs the worker."""

from .worker import main

main()
