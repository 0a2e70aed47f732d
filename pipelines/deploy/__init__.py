"""Deploying a recorded, checked build to an environment."""
