"""The API tests' world (the Weihai tree, a campaign, one user per role) for the security suite."""

from tests.api.conftest import world

__all__ = ["world"]
