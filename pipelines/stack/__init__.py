"""The smoke stage (smoke.py) and the load check (load.py), each on a Compose stack of its own run.

Bringing the stack up, waiting for health and tearing it down is
``pipelines.composestack``, which deploy uses too.
"""
