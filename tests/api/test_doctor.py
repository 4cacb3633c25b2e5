"""`jinqiu --version` and `jinqiu doctor`: the database resolved once (--database, else
JINQIU_DATABASE_URL, else ./jinqiu.db of the folder) and printed with its password masked;
migrations, the calendar's years, a real SMTP server (aiosmtpd), the signing key and the
attachments directory checked; a line in Chinese per check, a stable code in --json, exit 1 on
any failure — and nothing created by looking."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jinqiu.workflow.db import make_engine
from jinqiu.workflow.migrate import upgrade
from tests.command import Run, run_jinqiu
from tests.notifications.test_smtp_delivery import SmtpServer, free_port

CODES = ["database", "migrations", "calendar", "smtp", "secret_key", "attachments"]
KEY = "doctor-test-secret-key-0123456789abcdef"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def environment(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINQIU_")}
    return {**env, "PYTHONUTF8": "1", "TMPDIR": str(tmp_path), **more}


def doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[Run, dict[str, Any]]:
    run = run_jinqiu(env, ["doctor", "--json", *args], cwd=cwd)
    checks = {c["code"]: c for c in json.loads(run.out)}
    assert list(checks) == CODES
    return run, checks


def migrated(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_everything_found_and_working(tmp_path: Path, smtp: SmtpServer) -> None:
    url = migrated(tmp_path / "service.db")
    env = environment(tmp_path, JINQIU_DATABASE_URL=url, JINQIU_SMTP_PORT=str(smtp.port),
                      JINQIU_SECRET_KEY=KEY, JINQIU_ATTACHMENTS_DIR=str(tmp_path / "files"))  # fmt: skip
    run, checks = doctor(env, tmp_path)
    assert run.code == 0, run.out
    assert all(c["ok"] for c in checks.values()), checks
    assert checks["database"]["value"] == url
    assert checks["calendar"]["value"].startswith("2004–")
    text = run_jinqiu(env, ["doctor"], cwd=tmp_path)
    assert text.code == 0
    assert [line.split(" ")[1] for line in text.out.splitlines()] == [f"[{c}]" for c in CODES]
    assert all(line.startswith("正常 ") for line in text.out.splitlines())


def test_each_problem_is_named_and_fails_the_command(tmp_path: Path) -> None:
    unmigrated = tmp_path / "empty.db"
    make_engine(f"sqlite:///{unmigrated}").connect().close()  # a file, no tables
    env = environment(tmp_path, JINQIU_DATABASE_URL=f"sqlite:///{unmigrated}",
                      JINQIU_SMTP_PORT=str(free_port()), JINQIU_SECRET_KEY="short")  # fmt: skip
    run, checks = doctor(env, tmp_path)
    assert run.code == 1
    failed = {code for code, c in checks.items() if not c["ok"]}
    assert failed == {"migrations", "smtp", "secret_key"}
    assert "jinqiu db upgrade" in checks["migrations"]["message"]
    assert "无法连接邮件服务器" in checks["smtp"]["message"]


def test_run_from_another_folder_it_names_that_folders_file_and_creates_nothing(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = environment(tmp_path)
    version = run_jinqiu(env, ["--version"], cwd=elsewhere)
    assert version.code == 0
    assert f"sqlite:///{elsewhere / 'jinqiu.db'}" in version.out and "默认值" in version.out
    run, checks = doctor(env, elsewhere)
    assert run.code == 1 and not checks["database"]["ok"]
    assert "数据库文件不存在" in checks["database"]["message"]
    assert list(elsewhere.iterdir()) == []  # no empty database, no key, no folder


def test_a_postgresql_password_is_never_printed(
    tmp_path: Path, postgres_schema_url: tuple[str, str]
) -> None:
    url, _schema = postgres_schema_url
    with_password = url.replace("postgres@", "postgres:hunter2-secret@", 1)
    assert "hunter2-secret" in with_password
    env = environment(tmp_path, JINQIU_SECRET_KEY=KEY)
    run, checks = doctor(env, tmp_path, "--database", with_password)
    assert "hunter2-secret" not in run.out and "***" in checks["database"]["value"]
    assert checks["database"]["ok"], checks["database"]


def test_an_s3_store_s_settings_are_checked_without_contacting_it(tmp_path: Path) -> None:
    """JINQIU_ATTACHMENTS_STORE=s3: an http endpoint without JINQIU_S3_ALLOW_HTTP and missing
    credentials are named; the secret is never printed; then, set right, the store is shown."""
    url = migrated(tmp_path / "service.db")
    base = {"JINQIU_DATABASE_URL": url, "JINQIU_SECRET_KEY": KEY, "JINQIU_ATTACHMENTS_STORE": "s3",
            "JINQIU_S3_BUCKET": "jinqiu-files"}  # fmt: skip
    _run, checks = doctor(
        environment(tmp_path, **base, JINQIU_S3_ENDPOINT_URL="http://s3.internal:9000"), tmp_path
    )
    message = checks["attachments"]["message"]
    assert not checks["attachments"]["ok"]
    assert "https://" in message and "JINQIU_S3_ACCESS_KEY_ID 未设置" in message
    secret = "doctor-s3-secret-value"
    env = environment(
        tmp_path, **base, JINQIU_S3_ENDPOINT_URL="https://s3.internal:9000",
        JINQIU_S3_ACCESS_KEY_ID="id", JINQIU_S3_SECRET_ACCESS_KEY=secret,
    )  # fmt: skip
    run, checks = doctor(env, tmp_path)
    assert checks["attachments"]["ok"] and "jinqiu-files" in checks["attachments"]["message"]
    assert secret not in run.out
