"""The `jinqiu` command line from the project root, against a fresh SQLite file (and against a
PostgreSQL schema of its own): in this process (tests/command.py), and as the real console
script where the process is the point (it is installed; the demo, which serves SMTP and makes
its database under TMPDIR)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from jinqiu.api.app import create_app
from jinqiu.states import CaseEvent
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings, normalise_url
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.users.models import Role
from tests.command import JINQIU, Run, run_jinqiu
from tests.conftest import postgres_engine
from tests.factories import ROOT, WEIHAI, actor_of, new_case, weihai
from tests.security.support import url_of
from tests.workflow.cases.test_engine import DISTRICT, GRASSROOTS, fire

INTACT = "audit chains intact"
MATCH = "counters match the cases"


class Cli:
    """`jinqiu` with JINQIU_DATABASE_URL set; `command` is split like a shell would, `extra`
    arguments (paths) are passed as they are. In this process (tests/command.py) unless
    `process`: the real console script, for what only a process shows."""

    def __init__(self, database_url: str, tmp: Path, *, process: bool = False, **env: str) -> None:
        self.process = process
        self.env = {
            **os.environ,
            "JINQIU_DATABASE_URL": database_url,
            "PYTHONUTF8": "1",
            "TMPDIR": str(tmp),  # where `jinqiu demo` makes its database
            **env,
        }

    def __call__(self, command: str, *extra: str) -> Run:
        return run_jinqiu(self.env, [*shlex.split(command), *extra], cwd=ROOT, process=self.process)

    def ok(self, command: str, *extra: str) -> str:
        run = self(command, *extra)
        assert run.code == 0, f"jinqiu {command} exited {run.code}:\n{run.out}\n{run.err}"
        return run.out

    def seed(self) -> int:
        """The city, a district and a grassroots union, then the Weihai campaign (its id)."""
        self.ok("unit create --code WH --name 威海市总工会 --level city")
        self.ok(f"unit create --code {DISTRICT} --name 环翠区总工会 --level district --parent WH")
        self.ok(
            f"unit create --code {GRASSROOTS} --name 环翠区纺织公司工会 --level grassroots"
            f" --parent {DISTRICT}"
        )
        return int(self.ok("campaign load", str(WEIHAI)).strip())


def copy_database(template: Path, target: Path) -> None:
    src, dst = sqlite3.connect(template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """Made once with the CLI: a migrated empty database and a seeded one (and its campaign).
    Tests only copy them (`migrated`, `seeded`)."""
    where = tmp_path_factory.mktemp("cli-templates")
    migrated, seeded = where / "migrated.db", where / "seeded.db"
    Cli(f"sqlite:///{migrated}", where).ok("db upgrade")
    copy_database(migrated, seeded)
    campaign = Cli(f"sqlite:///{seeded}", where).seed()
    return migrated, seeded, campaign


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "jinqiu.db"


@pytest.fixture
def cli(sqlite_file: Path, tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{sqlite_file}", tmp_path)


@pytest.fixture
def migrated(templates: tuple[Path, Path, int], sqlite_file: Path) -> None:
    copy_database(templates[0], sqlite_file)


@pytest.fixture
def seeded(templates: tuple[Path, Path, int], sqlite_file: Path) -> int:
    copy_database(templates[1], sqlite_file)
    return templates[2]


def rows(sqlite_file: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(sqlite_file)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_db_upgrade_creates_the_schema_and_is_idempotent(sqlite_file: Path, tmp_path: Path) -> None:
    assert JINQIU.exists(), f"{JINQIU} missing: `pip install -e .` installs it"
    cli = Cli(f"sqlite:///{sqlite_file}", tmp_path, process=True)  # the installed script
    assert not sqlite_file.exists()
    assert "schema up to date" in cli.ok("db upgrade")
    tables = {r[0] for r in rows(sqlite_file, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"unit", "aid_case", "audit_entry", "fund_source", "alembic_version"} <= tables
    (version,) = rows(sqlite_file, "SELECT version_num FROM alembic_version")
    cli.ok("db upgrade")
    assert rows(sqlite_file, "SELECT version_num FROM alembic_version") == [version]


def test_units_are_created_under_their_parent(cli: Cli, sqlite_file: Path, migrated: None) -> None:
    out = cli.ok("unit create --code WH --name 威海市总工会 --level city")
    assert re.fullmatch(r"unit WH created \(id \d+\)\n", out)
    cli.ok("unit create --code WH-HC --name 环翠区总工会 --level district --parent WH")
    assert dict(rows(sqlite_file, "SELECT code, path FROM unit")) == {
        "WH": "/WH/",
        "WH-HC": "/WH/WH-HC/",
    }
    assert rows(sqlite_file, "SELECT name, level FROM unit WHERE code = 'WH'") == [
        ("威海市总工会", "city")
    ]


def test_an_unknown_parent_is_refused_in_chinese(
    cli: Cli, sqlite_file: Path, migrated: None
) -> None:
    run = cli("unit create --code WH-WD --name 文登区总工会 --level district --parent NOPE")
    assert run.code != 0
    assert "上级单位 NOPE 不存在" in run.err
    assert "parent" in run.err
    assert rows(sqlite_file, "SELECT count(*) FROM unit") == [(0,)]


def test_a_user_gets_several_roles(cli: Cli, sqlite_file: Path, seeded: int) -> None:
    out = cli.ok(
        f"user create --username liu.hc --password correct-horse-9 --unit {DISTRICT}"
        " --role reviewer --role approver --display-name 刘审核"
    )
    assert re.fullmatch(r"user liu\.hc created \(id \d+\)\n", out)
    ((roles, name, password_hash),) = rows(
        sqlite_file,
        "SELECT roles, display_name, password_hash FROM app_user WHERE username = 'liu.hc'",
    )
    assert (sorted(json.loads(str(roles))), name) == (["approver", "reviewer"], "刘审核")
    assert "correct-horse-9" not in str(password_hash)


def test_campaign_load_warns_when_publicity_runs_past_the_payment_window(
    cli: Cli, tmp_path: Path, seeded: int
) -> None:
    """Weihai 2024: verified on 8/22, five working days of publicity end on 8/29, after the
    8/23–8/29 payment window: loaded, with a warning on stderr (exit 0)."""
    other = tmp_path / "weihai-warned.json"
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw["name"] = "2024年度金秋助学活动（警告）"
    other.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    run = cli("campaign load", str(other))
    assert run.code == 0 and re.fullmatch(r"\d+\n", run.out)
    assert "警告 [publicity_after_payment_window]" in run.err
    assert "2024-08-22" in run.err and "2024-08-29" in run.err
    raw["name"], raw["publicity_working_days"] = "2024年度金秋助学活动（三天）", 3
    other.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    quiet = cli("campaign load", str(other))
    assert quiet.code == 0 and quiet.err == ""


def test_campaign_load_prints_the_new_id(
    cli: Cli, sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    other = tmp_path / "weihai-supplement.json"  # the same file again is a duplicate (409)
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw["name"] = "2024年度金秋助学活动（补充）"
    other.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    out = cli.ok("campaign load", str(other))
    assert re.fullmatch(r"\d+\n", out)
    second = int(out)
    assert second != seeded
    assert rows(sqlite_file, "SELECT id FROM campaign ORDER BY id") == [(seeded,), (second,)]
    funds = rows(
        sqlite_file,
        "SELECT source, budget_fen FROM fund_source WHERE campaign_id = ? ORDER BY position",
        second,
    )
    assert funds[0] == ("government", 40_000_000)


def test_a_campaign_file_with_a_bad_field_is_refused_naming_it(
    cli: Cli, sqlite_file: Path, tmp_path: Path, seeded: int
) -> None:
    bad = tmp_path / "bad.json"
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw["publicity_working_days"] = "five"
    bad.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    run = cli("campaign load", str(bad))
    assert (run.code != 0, run.out) == (True, "")
    assert "publicity_working_days" in run.err
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw["funds"][1]["budget"] = 100000.5  # money is never a float
    bad.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    run = cli("campaign load", str(bad))
    assert (run.code != 0, run.out) == (True, "")
    assert "funds.1.budget" in run.err
    assert rows(sqlite_file, "SELECT id FROM campaign") == [(seeded,)]


def test_machine_prints_a_mermaid_diagram_with_every_event(cli: Cli) -> None:
    out = cli.ok("machine --format mermaid")
    assert out.startswith("---\n案件状态机\n---\nstateDiagram-v2\n")  # titled by the library
    edges = re.findall(r"^\s+\S+ --> \S+: (.+)$", out, flags=re.MULTILINE)
    labels = {label.split()[0] for edge in edges for label in edge.split(" | ")}
    assert labels == {e.value for e in CaseEvent}
    run = cli("machine --format dot")
    assert run.code != 0
    assert "mermaid" in run.err


def test_audit_verify_passes_clean_and_names_a_tampered_entry(
    cli: Cli, sqlite_file: Path, clock: ManualClock, seeded: int
) -> None:
    run = cli("audit verify")
    assert (run.code, run.out.strip(), run.err) == (0, INTACT, "")  # no cases yet
    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        cases = [new_case(engine, clock, seeded, GRASSROOTS) for _ in range(2)]
        for case_id in cases:
            fire(engine, clock, case_id, "submit", actor_of(engine, GRASSROOTS, "clerk"))
        reviewer = actor_of(engine, DISTRICT, "reviewer")
        fire(engine, clock, cases[1], "return", reviewer, opinion="缺少录取通知书")
    finally:
        engine.dispose()
    assert cli.ok("audit verify").strip() == INTACT

    conn = sqlite3.connect(sqlite_file)
    try:
        with conn:
            ((entry_id,),) = conn.execute(
                "SELECT id FROM audit_entry WHERE case_id = ? AND seq = 2", (cases[1],)
            ).fetchall()
            conn.execute(
                "UPDATE audit_entry SET opinion = '同意（已改）' WHERE id = ?", (entry_id,)
            )
    finally:
        conn.close()
    run = cli("audit verify")
    assert run.code == 1
    assert f"case {cases[1]}, seq 2, audit entry #{entry_id}" in run.err
    assert f"case {cases[0]}," not in run.err
    assert INTACT not in run.out


def test_counters_verify_names_each_difference_and_repair_sets_it_right(
    db: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    _tree, campaign = weihai(db, clock)
    new_case(db, clock, campaign, GRASSROOTS)
    cli = Cli(url_of(db), tmp_path)
    cli.env.pop("PGOPTIONS", None)  # the schema is in the URL
    assert cli.ok("counters verify").strip() == MATCH
    with transaction(db) as conn:  # a counter edited around the engine
        conn.execute(
            text("UPDATE unit_case_count SET survey = survey + 2 WHERE unit_code = :u"),
            {"u": DISTRICT},
        )
    run = cli("counters verify")
    assert run.code == 1
    assert run.err.splitlines() == [
        f"DIFFERS campaign {campaign}, unit {DISTRICT}, state survey: counter 3, cases 1"
    ]
    assert MATCH not in run.out
    run = cli(f"counters verify --campaign {campaign} --repair")
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        f"REPAIRED campaign {campaign}, unit {DISTRICT}, state survey: counter 3, cases 1",
        "counters repaired: 1",
    ]
    assert cli.ok("counters verify").strip() == MATCH
    missing = cli(f"counters verify --campaign {campaign + 1}")
    assert (missing.code, missing.out) == (2, "")
    assert missing.err.startswith("错误 [not_found]") and str(campaign + 1) in missing.err
    # The dashboard's other counts too (migration 0029): a unit count edited around create_unit.
    with transaction(db) as conn:
        conn.execute(
            text("UPDATE unit_count SET n = n + 1 WHERE unit_code = :u AND level = 'district'"),
            {"u": DISTRICT},
        )
    run = cli("counters verify")
    assert (run.code, run.err.splitlines()) == (
        1,
        [f"DIFFERS units {DISTRICT}, district: counter 2, recount 1"],
    )
    assert cli.ok("counters verify --repair").splitlines() == [
        f"REPAIRED units {DISTRICT}, district: counter 2, recount 1",
        "counters repaired: 1",
    ]
    assert cli.ok("counters verify").strip() == MATCH


def test_demo_runs_the_campaign_into_the_folders_database_and_leads_to_the_dashboard(
    tmp_path: Path,
) -> None:
    """No --database and no JINQIU_DATABASE_URL: ./jinqiu.db of the folder it runs in; then one
    user per role whose printed password signs in, and the `serve` line names that database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINQIU_")}
    env.update({"PYTHONUTF8": "1", "TMPDIR": str(tmp_path)})
    # A whole campaign in a process: allowed longer than a command on a busy shared machine.
    run = run_jinqiu(env, ["demo", "--cases", "40"], cwd=tmp_path, process=True, timeout=600)
    assert run.code == 0, run.err
    counts = {k: int(v) for k, v in re.findall(r"^  (\w+)\s+\S+\s+(\d+)$", run.out, re.MULTILINE)}
    assert {"closed", "withdrawn", "total"} <= counts.keys()
    total = counts.pop("total")
    assert total == sum(counts.values()) == 40
    assert counts["closed"] > 0
    assert "审计链校验：全部完整" in run.out
    # The sweep ran every morning and reminded the late unions (a failing sweep is an exit 1).
    mails = re.search(r"本地 SMTP 服务器收到邮件 (\d+) 封", run.out)
    assert mails is not None and int(mails.group(1)) > 0, run.out[-800:]
    assert "定时任务出错" not in run.out
    database = tmp_path / "jinqiu.db"
    url = f"sqlite:///{database}"
    assert f"demo database: {url}\n" in run.out and database.exists()
    serve = re.search(r"^  (.*)serve$", run.out, re.MULTILINE)
    assert serve is not None and serve.group(1).startswith(f"JINQIU_DATABASE_URL={url} ")
    assert "http://127.0.0.1:8000/login" in run.out
    accounts = re.findall(r"^  (\w+)\s+(demo\.\w+)\s+(\S+)\s+(\S+)$", run.out, re.MULTILINE)
    assert sorted(role for role, *_ in accounts) == sorted(
        r.value for r in Role if r is not Role.SCHEDULER
    )
    app = create_app(
        engine=make_engine(url),
        settings=Settings(database_url=url, secret_key="demo-test-secret-key-0123456789abcdef"),
    )
    with TestClient(app) as client:
        for _role, username, _unit, password in accounts:
            signed = client.post(
                "/api/auth/token", data={"username": username, "password": password}
            )
            assert signed.status_code == 200, (username, signed.text)
        manager = dict((u, p) for _r, u, _unit, p in accounts)["demo.manager"]
        token = client.post(
            "/api/auth/token", data={"username": "demo.manager", "password": manager}
        )
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        (campaign,) = client.get("/api/campaigns", headers=bearer).json()
        board = client.get("/api/dashboard", params={"campaign": campaign["id"]}, headers=bearer)
        assert board.status_code == 200, board.text
        assert board.json()["total"] == 40, board.json()
    # Run again in the same folder: refused, the database kept, --reset named.
    again = run_jinqiu(env, ["demo", "--cases", "5"], cwd=tmp_path)
    assert again.code == 2 and "--reset" in again.err and "database_not_empty" in again.err


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def cli_schema(postgres_schema_url: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """A schema of this test's own (the session's schema belongs to `pg`), dropped after."""
    url, _session_schema = postgres_schema_url
    schema = f"jq_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield url, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def with_search_path(url: str, schema: str) -> str:
    """`postgresql+psycopg://…/test?options=-csearch_path%3D<schema>`"""
    return (
        make_url(normalise_url(url))
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.mark.postgres
@pytest.mark.parametrize("schema_in", ["url-options", "PGOPTIONS"])
def test_audit_verify_on_postgresql(
    cli_schema: tuple[str, str], tmp_path: Path, schema_in: str
) -> None:
    """The schema chosen in the URL itself (`?options=-csearch_path%3D<schema>`, which psycopg
    hands to the server), or the URL left plain and the schema set through libpq's PGOPTIONS."""
    url, schema = cli_schema
    if schema_in == "url-options":
        cli_url = with_search_path(url, schema)
        assert cli_url.endswith(f"?options=-csearch_path%3D{schema}")
        cli = Cli(cli_url, tmp_path)
        engine: Engine = make_engine(cli_url, pool_size=2)
    else:
        cli = Cli(normalise_url(url), tmp_path, PGOPTIONS=f"-csearch_path={schema}")
        engine = postgres_engine(url, schema, pool_size=2)
    try:
        cli.ok("db upgrade")
        campaign = cli.seed()
        with engine.connect() as conn:  # the CLI wrote into this test's schema
            assert conn.execute(text("SELECT current_schema()")).scalar_one() == schema
            assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 3
        assert cli.ok("audit verify").strip() == INTACT
        clock = ManualClock(dt.datetime(2024, 7, 20, 9, 0))
        case_id = new_case(engine, clock, campaign, GRASSROOTS)
        fire(engine, clock, case_id, "submit", actor_of(engine, GRASSROOTS, "clerk"))
        clock.set(dt.datetime(2024, 8, 1, 10))
        reviewer = actor_of(engine, DISTRICT, "reviewer")
        fire(engine, clock, case_id, "verify", reviewer, opinion="档案核查无误")
        assert cli.ok("audit verify").strip() == INTACT
        with engine.begin() as conn:
            entry_id = conn.execute(
                text(
                    "UPDATE audit_entry SET opinion = '同意（已改）'"
                    " WHERE case_id = :c AND seq = 3 RETURNING id"
                ),
                {"c": case_id},
            ).scalar_one()
    finally:
        engine.dispose()
    run = cli("audit verify")
    assert run.code == 1
    assert f"case {case_id}, seq 3, audit entry #{entry_id}" in run.err


# -- jinqiu import ----------------------------------------------------------------------------------
def test_import_template_then_a_dry_run_then_the_import(
    cli: Cli, sqlite_file: Path, seeded: int, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    from tests.workflow.survey.files import survey_row, xlsx

    template = tmp_path / "模板.xlsx"
    assert "导入模板已写入" in cli.ok("import --template --out", str(template))
    assert "学生姓名" in [c.value for c in load_workbook(template)["摸底表"][3]]

    bad = tmp_path / "摸底表.xlsx"
    bad.write_bytes(xlsx([survey_row(), survey_row(当前学历="大学")]))
    report = tmp_path / "错误说明.xlsx"
    checked = cli(f"import --campaign {seeded} --unit {GRASSROOTS} --report", str(report), str(bad))
    assert checked.code == 1, checked.err
    assert "第 5 行 [当前学历] not_allowed：" in checked.err
    assert "行数 2，无误 1，新建案件 0" in checked.out
    marked = load_workbook(report).active
    assert marked is not None and marked.cell(3, marked.max_column).value == "错误说明"
    assert rows(sqlite_file, "SELECT count(*) FROM aid_case") == [(0,)]

    good = tmp_path / "改正后.xlsx"
    good.write_bytes(xlsx([survey_row(), survey_row(是否申请="否")]))
    dry = cli(f"import --campaign {seeded} --unit {GRASSROOTS} --dry-run", str(good))
    assert dry.code == 0 and "试导入" in dry.out, dry.err
    out = cli.ok(f"import --campaign {seeded} --unit {GRASSROOTS}", str(good))
    assert "新建案件 1，登记 2" in out
    assert rows(sqlite_file, "SELECT count(*), min(actor) FROM audit_entry") == [(1, "cli")]
    again = cli.ok(f"import --campaign {seeded} --unit {GRASSROOTS}", str(good))
    assert "新建案件 0，登记 0，此前已导入 2" in again


def test_import_of_an_unreadable_file_exits_2(
    cli: Cli, sqlite_file: Path, seeded: int, tmp_path: Path
) -> None:
    broken = tmp_path / "坏.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    run = cli(f"import --campaign {seeded} --unit {GRASSROOTS}", str(broken))
    assert run.code == 2
    assert run.err.startswith("错误 [file_unreadable]：")


@pytest.mark.parametrize(
    "args",
    [
        "import --campaign 99999999999999999999999 --unit WH-HC-001 x.csv",
        "import --campaign 0 --unit WH-HC-001 x.csv",
        "counters verify --campaign 99999999999999999999999",
        "serve --port 70000",
        "serve --workers 100000",
    ],
)
def test_numbers_out_of_range_are_a_usage_error_not_a_crash(
    cli: Cli, sqlite_file: Path, migrated: None, args: str
) -> None:
    """An id past the database's INTEGER once crashed the import with OverflowError."""
    run = cli(args)
    assert run.code == 2, run.err
    assert run.err.startswith("错误 [usage_error]："), run.err
