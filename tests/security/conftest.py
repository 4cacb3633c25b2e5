"""The attack suite runs against the same world as the API tests (tests/api/conftest.py)."""

from tests.api.conftest import world  # noqa: F401  (the fixture, shared)
