"""Finding 14 (and 17's campaign side through the CLI): every `jinqiu` error is one line in
Chinese on stderr with exit code 2 — never a traceback. The command line in this process
(tests/command.py), and the real console script where only a process shows it (a traceback goes
to the log file, not the terminal; a usage error; the demo), on SQLite files made from the CLI
tests' templates (and a PostgreSQL schema for `demo --reset`)."""

from __future__ import annotations

import codecs
import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import ArgumentError

from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.db import make_engine, transaction
from tests.api.test_cli import (
    Cli,
    Run,
    cli_schema,  # noqa: F401  (a fixture: a PostgreSQL schema of this test's own)
    copy_database,
    rows,
    templates,  # noqa: F401  (a fixture: migrated and seeded template databases)
    with_search_path,
)
from tests.factories import WEIHAI

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
RAW: dict[str, Any] = json.loads(WEIHAI.read_text(encoding="utf-8"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def refused(run: Run, *needles: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr, in Chinese, naming what it should."""
    line = run.err.rstrip("\n")
    assert run.code == 2, (run.code, run.out, run.err)
    assert "Traceback" not in run.err and "\n" not in line, run.err
    assert CJK.search(line), line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "jinqiu.db"


@pytest.fixture
def cli(sqlite_file: Path, tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{sqlite_file}", tmp_path)


@pytest.fixture
def seeded(templates: tuple[Path, Path, int], sqlite_file: Path) -> int:  # noqa: F811
    copy_database(templates[1], sqlite_file)
    return templates[2]


def campaign_file(tmp_path: Path, raw: dict[str, Any], encoding: str = "utf-8") -> Path:
    path = tmp_path / f"campaign-{uuid.uuid4().hex[:8]}.json"
    path.write_bytes(json.dumps(raw, ensure_ascii=False).encode(encoding))
    return path


def named(name: str) -> dict[str, Any]:
    return dict(RAW, name=name)


# -- campaign load --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("gbk", "2024年度金秋助学活动（GBK）"),
        ("gb18030", "2024年度金秋助学活动（GB18030）"),
        ("utf-8-sig", "2024年度金秋助学活动（记事本）"),
    ],
)
def test_campaign_files_as_windows_saves_them_load(
    cli: Cli, sqlite_file: Path, tmp_path: Path, seeded: int, encoding: str, name: str
) -> None:
    campaign_id = int(cli.ok("campaign load", str(campaign_file(tmp_path, named(name), encoding))))
    assert rows(sqlite_file, "SELECT name FROM campaign WHERE id = ?", campaign_id) == [(name,)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_campaign_file_is_refused_asking_for_utf8(
    cli: Cli, tmp_path: Path, seeded: int, encoding: str
) -> None:
    path = campaign_file(tmp_path, named("2024年度金秋助学活动（UTF-16）"), encoding)
    refused(cli("campaign load", str(path)), "UTF-8")


def test_a_file_in_no_known_encoding_is_refused(cli: Cli, tmp_path: Path, seeded: int) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(codecs.BOM_UTF8[:2] + bytes(range(0x80, 0x100)) * 4)
    refused(cli("campaign load", str(path)), "UTF-8")


def test_a_deeply_nested_file_is_refused(cli: Cli, tmp_path: Path, seeded: int) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    refused(cli("campaign load", str(path)), "嵌套")


def test_a_number_with_too_many_digits_is_refused(cli: Cli, tmp_path: Path, seeded: int) -> None:
    path = tmp_path / "digits.json"
    path.write_text(json.dumps(RAW).replace('"year": 2024', '"year": ' + "9" * 5000))
    refused(cli("campaign load", str(path)), "JSON")


def test_a_budget_of_1e30_is_refused_naming_the_fund(
    cli: Cli, sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    raw = named("2024年度金秋助学活动（巨额）")
    raw["funds"] = [{"source": "government", "budget": "1e30"}]
    refused(cli("campaign load", str(campaign_file(tmp_path, raw))), "funds.0.budget")
    assert rows(sqlite_file, "SELECT count(*) FROM campaign") == [(1,)]


def test_a_nul_in_a_campaign_name_is_refused(
    cli: Cli, sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    refused(cli("campaign load", str(campaign_file(tmp_path, named("金秋\u0000助学")))), "name")
    assert rows(sqlite_file, "SELECT count(*) FROM campaign") == [(1,)]


def test_loading_the_same_campaign_twice_is_refused_as_a_duplicate(
    cli: Cli, sqlite_file: Path, seeded: int
) -> None:
    refused(cli("campaign load", str(WEIHAI)), "duplicate_campaign", RAW["name"])
    assert rows(sqlite_file, "SELECT id FROM campaign") == [(seeded,)]


def test_a_campaign_outside_the_known_calendar_is_refused_naming_the_year(
    cli: Cli, tmp_path: Path, seeded: int
) -> None:
    raw = json.loads(json.dumps(RAW).replace("2024-", "2031-"))
    raw.update(year=2031, name="2031年度金秋助学活动")
    refused(cli("campaign load", str(campaign_file(tmp_path, raw))), "2031", "calendar")


def test_a_missing_campaign_file_is_refused(cli: Cli, tmp_path: Path, seeded: int) -> None:
    refused(cli("campaign load", str(tmp_path / "nope.json")), "nope.json")
    refused(cli("campaign load", str(tmp_path)))  # a directory


# -- tick -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now", ["9999-12-31T23:59:59+08:00", "0001-01-01T00:00:00", "1999-12-31T12:00:00", "昨天"]
)
def test_tick_refuses_an_instant_outside_2000_to_2100(cli: Cli, seeded: int, now: str) -> None:
    refused(cli("tick --now", now), "--now")


@pytest.mark.parametrize("now", ["9" * 5000, "2024-07-29T09:00:00" + "x" * 5000])
def test_tick_does_not_echo_a_huge_instant_back(cli: Cli, seeded: int, now: str) -> None:
    """An attacker's or a typo's 5,000 characters get one short line naming the option and how
    long the value was, not the value itself."""
    line = refused(cli("tick --now", now), "--now", "5")
    assert len(line) < 200, line


def test_tick_reports_a_broken_campaign_and_sweeps_the_others(
    cli: Cli, sqlite_file: Path, seeded: int
) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        with transaction(engine) as conn:
            conn.execute(
                update(campaign_t)
                .where(campaign_t.c.id == seeded)
                .values(reminders={"before_working_days": [1_000_000]}, rules_token="hand-edited")
            )
    finally:
        engine.dispose()
    run = cli("tick --now 2024-07-29T09:00:00+08:00")
    assert run.code == 1, run
    assert "Traceback" not in run.err
    assert "delivery:" in run.out  # delivery still ran
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and f"活动 {seeded}" in lines[0] and "2003" in lines[0], run.err


# -- demo -----------------------------------------------------------------------------------------


def test_demo_refuses_a_database_with_data_unless_reset(
    sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    url = f"sqlite:///{sqlite_file}"
    cli = Cli(url, tmp_path)
    refused(cli("demo --cases 5 --database", url), "--reset")
    assert rows(sqlite_file, "SELECT id FROM campaign") == [(seeded,)]  # untouched
    run = cli("demo --cases 5 --reset --database", url)
    assert run.code == 0, run.err
    assert rows(sqlite_file, "SELECT count(*) FROM aid_case") == [(5,)]
    assert rows(sqlite_file, "SELECT count(*) FROM unit WHERE code = 'WH-HC-001'") == [(1,)]


def test_demo_runs_on_a_migrated_empty_database(
    sqlite_file: Path,
    tmp_path: Path,
    templates: tuple[Path, Path, int],  # noqa: F811
) -> None:
    copy_database(templates[0], sqlite_file)
    cli = Cli(f"sqlite:///{sqlite_file}", tmp_path)
    assert cli("demo --cases 5 --database", f"sqlite:///{sqlite_file}").code == 0


@pytest.mark.postgres
def test_demo_reset_on_postgresql_empties_the_schema_first(
    cli_schema: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, schema = cli_schema
    target = with_search_path(url, schema)
    cli = Cli(target, tmp_path)
    cli.seed()
    refused(cli("demo --cases 5 --database", target), "--reset")
    run = cli("demo --cases 5 --reset --database", target)
    assert run.code == 0, run.err
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT current_schema()")).scalar_one() == schema
            assert conn.execute(text("SELECT count(*) FROM aid_case")).scalar_one() == 5
            assert conn.execute(text("SELECT count(*) FROM campaign")).scalar_one() == 1
    finally:
        engine.dispose()


# -- everything else --------------------------------------------------------------------------------


def test_commands_on_a_missing_sqlite_file_say_so_and_create_nothing(
    cli: Cli, sqlite_file: Path, tmp_path: Path
) -> None:
    for command in ("audit verify", "tick"):
        refused(cli(command), "db upgrade")
    assert not sqlite_file.exists()
    elsewhere = Cli(f"sqlite:///{tmp_path}/no/such/dir/x.db", tmp_path)
    refused(elsewhere("db upgrade"))


def test_the_first_unit_creates_the_database_and_says_where(cli: Cli, sqlite_file: Path) -> None:
    """Bootstrapping starts with `unit create` (the root unit): it may create the file, and says
    so on stderr, so that a command run in the wrong folder is noticed."""
    run = cli("unit create --code WH --name 威海市总工会 --level city")
    assert run.code == 0, run.err
    assert str(sqlite_file) in run.err and "已新建" in run.err
    assert sqlite_file.exists()
    again = cli("unit create --code WH-HC --name 环翠区总工会 --level district --parent WH")
    assert again.code == 0 and "已新建" not in again.err


def test_an_unreadable_database_url_is_one_line(tmp_path: Path) -> None:
    refused(Cli("not a database url", tmp_path, process=True)("db upgrade"))
    refused(Cli("nosuchdriver://x/y", tmp_path)("audit verify"))


@pytest.mark.parametrize("command", ["--version", "doctor", "tick", "db upgrade"])
@pytest.mark.parametrize(
    "url",
    [
        "not a database url",
        "nosuchdriver://x/y",
        "postgresql://clerk:hunter2@127.0.0.1:notaport/test",
        f"postgresql://clerk:hunter2@127.0.0.1:{'9' * 5000}/test",
    ],
)
def test_a_database_url_that_cannot_be_read_says_so_without_its_password(
    tmp_path: Path, url: str, command: str
) -> None:
    """Any command, the version line included, refuses a database URL it cannot read with the
    URL's own code (a port that is not a number was an "unexpected program error"), in a short
    line that never shows the URL's password."""
    line = refused(Cli(url, tmp_path)(command), "invalid_database_url")
    assert "hunter2" not in line and len(line) < 300, line


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_the_short_postgresql_schemes_are_read(tmp_path: Path, scheme: str) -> None:
    """`postgres://` and `postgresql://` both mean PostgreSQL through psycopg 3 (the check of a
    URL reads it as the engine will, not as SQLAlchemy alone would)."""
    cli = Cli(f"{scheme}://nobody@127.0.0.1:1/none", tmp_path)
    shown = cli("--version")
    assert shown.code == 0, shown.err
    line = refused(cli("db upgrade"), "database_error")  # read, then not reachable
    assert "invalid_database_url" not in line


def test_a_programming_error_is_not_called_a_bad_database_url(
    cli: Cli, seeded: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy raises ArgumentError for a bad URL and for a statement given arguments it
    cannot take (a bug): only the first is the database URL's fault."""

    def misused(*_args: Any, **_kwargs: Any) -> Any:
        raise ArgumentError("List argument must consist only of tuples or dictionaries")

    monkeypatch.setattr("jinqiu.api.cli.counter_differences", misused)
    line = refused(cli("counters verify"), "internal_error")
    assert "invalid_database_url" not in line


def test_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    refused(Cli("postgresql://nobody@127.0.0.1:1/none", tmp_path)("db upgrade"), "数据库")


@pytest.mark.parametrize(
    "command",
    [
        "unit create --code WH-X --name 某工会 --level galaxy",
        "unit create --code 'W H' --name 某工会 --level city",
        "unit create --code WH --name 重复 --level city",
        "unit create --code WH-Y --name 某工会 --level district --parent NOPE",
        "unit create --code WH-Z --name 某工会 --level district --contact-email not-an-address",
        "unit create --name 某工会 --level city",
        "user create --username '' --password '' --unit WH --role clerk",
        "user create --username u1 --password correct-horse-9 --unit WH --role emperor",
        "user create --username u2 --password correct-horse-9 --unit NOPE --role clerk",
        "machine --format dot",
        "nosuchcommand",
        "tick --bogus",
    ],
)
def test_odd_input_to_any_command_is_one_line(cli: Cli, seeded: int, command: str) -> None:
    refused(cli(command))


def test_a_tampered_database_still_answers_in_one_line(
    sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    cli = Cli(f"sqlite:///{sqlite_file}", tmp_path, process=True)
    conn = sqlite3.connect(sqlite_file)
    try:
        conn.execute("DROP TABLE audit_entry")
        conn.commit()
    finally:
        conn.close()
    line = refused(cli("audit verify"))
    log = re.search(r"(/\S+\.log)", line)
    assert log and Path(log.group(1)).read_text(encoding="utf-8").startswith("Traceback")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JINQIU_SMTP_PORT", "abc"),
        ("JINQIU_SWEEP_WITHIN", "B" * 100),
        ("JINQIU_SWEEP_WITHIN", ""),
        ("JINQIU_SWEEP_CHUNK", "10"),
        ("JINQIU_SWEEP_CHUNK", "99999999"),
        ("JINQIU_DELIVERY_CONNECTIONS", "0"),
        ("JINQIU_DELIVERY_CONNECTIONS", "1000"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    sqlite_file: Path, tmp_path: Path, variable: str, value: str
) -> None:
    """A setting the environment gets wrong is the operator's to fix: named, with the reason —
    not an 'unexpected error' with a log file to read."""
    cli = Cli(f"sqlite:///{sqlite_file}", tmp_path, **{variable: value})
    line = refused(cli("tick"), "invalid_setting", variable)
    assert "意外" not in line
