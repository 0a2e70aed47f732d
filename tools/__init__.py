"""Repository tooling: checks of the repository's own CI wiring and the noxfile's helpers; not shipped.

Importable from the repository root (noxfile.py, the tests); the `pipelines` package never imports it.
"""
