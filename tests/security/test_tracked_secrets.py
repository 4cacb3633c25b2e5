"""No secret is tracked by git: a signing key (`jinqiu.db.secret`, generated beside a SQLite
database) or a TLS key committed to the repository signs or decrypts for anyone who clones it.
`git ls-files` in the repository root must list no `*.secret`, `*.pem` or `*.key` file; .gitignore
keeps new ones out, this test keeps out one added with `git add -f`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.factories import ROOT

SECRET_SUFFIXES = (".secret", ".pem", ".key")


def tracked_files(root: Path) -> list[str]:
    """Every path git tracks below `root` (its index: a staged file counts, not yet committed)."""
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    )
    return [name for name in done.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def secret_files(paths: list[str]) -> list[str]:
    # By suffix, whatever the case: "KEY.PEM" is as secret as "key.pem".
    return [path for path in paths if path.lower().endswith(SECRET_SUFFIXES)]


def test_git_tracks_no_secret_file() -> None:
    if not (ROOT / ".git").exists():  # a directory, or a file in a worktree
        pytest.skip(f"{ROOT} is not a git checkout: no tracked files to check")
    found = secret_files(tracked_files(ROOT))
    assert not found, (
        "git tracks secret files; remove them (`git rm --cached`), and replace each key, "
        f"as it was published: {found}"
    )


def test_a_secret_added_despite_gitignore_is_found(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, check=True)

    git("init", "--quiet")
    (tmp_path / ".gitignore").write_text("*.secret\n", encoding="utf-8")
    (tmp_path / "jinqiu.db.secret").write_text("signing key\n", encoding="utf-8")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "Server.PEM").write_text("key\n", encoding="utf-8")
    (tmp_path / "keys.py").write_text("KEY = None\n", encoding="utf-8")
    git("add", ".gitignore", "keys.py", "certs")
    assert secret_files(tracked_files(tmp_path)) == ["certs/Server.PEM"]
    git("add", "-f", "jinqiu.db.secret")  # staged, not committed: already in the index
    assert secret_files(tracked_files(tmp_path)) == ["certs/Server.PEM", "jinqiu.db.secret"]
