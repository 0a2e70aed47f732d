"""Every test path (tests/, services/*/tests, images/*/tests) gets the suite's hooks and shared fixtures.

They live in tests/harness.py, loaded here as a plugin: a conftest.py applies only below its own folder, and the
tests of the services and images sit beside them, outside tests/.
"""

pytest_plugins = ["tests.harness"]
