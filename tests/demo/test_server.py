"""The server harness the tests and the bench share: a server that cannot start is reported with
its exit code and its own words; one that starts answers until the block ends, then is gone."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from jinqiu.demo.server import ServerFailed, serving
from tests.factories import ROOT


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINQIU_")}
    return {
        **env,
        "JINQIU_DATABASE_URL": f"sqlite:///{tmp_path / 'jinqiu.db'}",
        "PYTHONUTF8": "1",
        **extra,
    }


def test_a_server_that_exits_is_reported_with_its_exit_code_and_log(tmp_path: Path) -> None:
    env = environment(tmp_path, JINQIU_SECRET_KEY="short")  # refused: a key needs 32 characters
    with pytest.raises(ServerFailed) as failed, serving(env, tmp_path / "serve.log", cwd=ROOT):
        pytest.fail("the block must not run")
    assert "exited 2" in str(failed.value)
    assert "JINQIU_SECRET_KEY" in str(failed.value)


def test_a_healthy_server_answers_in_the_block_and_is_stopped_after_it(tmp_path: Path) -> None:
    env = environment(tmp_path, JINQIU_SECRET_KEY="harness-test-secret-0123456789abcdef")
    with serving(env, tmp_path / "serve.log", cwd=ROOT) as server:
        assert httpx.get(f"{server.base_url}/api/health", timeout=10).json()["status"] == "ok"
    assert not server.running()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/api/health", timeout=2)
