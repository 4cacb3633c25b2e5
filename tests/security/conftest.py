"""Fixtures the attack suite shares with tests/api: `world` (an app on both databases with the
Weihai tree and one user per role) and the real `jinqiu` CLI on a seeded SQLite file."""

from tests.api.conftest import world  # noqa: F401
from tests.api.test_cli import cli, migrated, seeded, sqlite_file, templates  # noqa: F401
