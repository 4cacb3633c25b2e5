"""The `jinqiu` command line (docs/CONTRACT.md).

Every error is one line in Chinese on stderr and exit code 2, never a traceback: `main()` turns
domain errors, usage errors, database and system errors into that line; anything unexpected
too, its traceback written to a log file the line names."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shlex
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, TextIO

import typer
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from jinqiu.states import to_mermaid
from jinqiu.workflow.campaigns.checks import campaign_warnings
from jinqiu.workflow.campaigns.service import load_campaign, read_campaign_file
from jinqiu.workflow.cases.counters import (
    CounterDifference,
    counter_differences,
    repair_counters,
)
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.config import get_settings, resolve_database
from jinqiu.workflow.dashboard.tallies import repair_tallies, tally_differences
from jinqiu.workflow.db import snapshot, transaction
from jinqiu.workflow.employment.trail import verify_record_chains
from jinqiu.workflow.errors import DomainError, NotFound, ValidationFailed
from jinqiu.workflow.publicity_lists.trail import verify_list_chains
from jinqiu.workflow.roles import permission_table
from jinqiu.workflow.runtime import (
    database_is_empty,
    open_database,
    open_existing_database,
    reset_database,
    sqlite_path,
    tune_collector,
)
from jinqiu.workflow.statistics.tables import check_campaign_tables
from jinqiu.workflow.tally import TallyDifference
from jinqiu.workflow.units.models import UnitLevel
from jinqiu.workflow.units.service import UnitCreate, create_unit
from jinqiu.workflow.users.models import Role
from jinqiu.workflow.users.service import UserCreate, create_user
from jinqiu.workflow.validation import MAX_DB_INT, parse
from jinqiu.workflow.validation import problems as validation_problems

app = typer.Typer(help="金秋助学 workflow service", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
unit_app = typer.Typer(help="union units", no_args_is_help=True)
user_app = typer.Typer(help="users", no_args_is_help=True)
campaign_app = typer.Typer(help="campaigns", no_args_is_help=True)
audit_app = typer.Typer(help="the audit trail", no_args_is_help=True)
counters_app = typer.Typer(help="the dashboard counters", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(unit_app, name="unit")
app.add_typer(user_app, name="user")
app.add_typer(campaign_app, name="campaign")
app.add_typer(audit_app, name="audit")
app.add_typer(counters_app, name="counters")


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import version

    from jinqiu.api.cli.doctor import SOURCES, shown_url

    choice = resolve_database()
    typer.echo(f"jinqiu {version('jinqiu')}")
    typer.echo(f"数据库：{shown_url(choice.url)}（来自{SOURCES[choice.source]}）")
    raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="the version, and the database every command would use",
        ),
    ] = False,
) -> None:
    """金秋助学 workflow service"""


@app.command("doctor")
def doctor(
    database: Annotated[
        str | None,
        typer.Option(help="database URL (default: JINQIU_DATABASE_URL, else ./jinqiu.db)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per check")] = False,
) -> None:
    """Check the settings: database (password masked), migrations, calendar years, SMTP, the
    signing key, the attachments directory. Exit 1 when any check fails."""
    import json

    from jinqiu.api.cli.doctor import as_json as checks_json
    from jinqiu.api.cli.doctor import diagnose

    checks = diagnose(get_settings(), resolve_database(database), SystemClock().now().date())
    if as_json:
        typer.echo(json.dumps(checks_json(checks), ensure_ascii=False))
    else:
        for check in checks:
            typer.echo(f"{'正常' if check.ok else '异常'} [{check.code}] {check.message}")
    if not all(c.ok for c in checks):
        raise typer.Exit(code=1)


class CliError(DomainError):
    """A refusal of the command line itself (an option's value, a database with data)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
EARLIEST, LATEST = 2000, 2100  # the instants `tick --now` accepts (the calendar's range, and more)


def one_line(text: str) -> str:
    """Whitespace collapsed and control characters shown as '?': never a second line."""
    return _CONTROL.sub("?", " ".join(text.split()))


def say_error(code: str, message: str, out: TextIO | None = None) -> None:
    print(one_line(f"错误 [{code}]：{message}"), file=out or sys.stderr)


def error_message(error: DomainError) -> str:
    """The message, then the problems whose field it does not name (all on the same line)."""
    message = error.message
    if isinstance(error.details, list):
        more = [
            d
            for d in error.details
            if isinstance(d, dict) and d.get("field") and str(d["field"]) not in message
        ]
        if more:
            # The field is always named; its message only when the main one does not say it.
            listed = "；".join(
                str(d["field"])
                if str(d.get("message")) in message
                else f"{d['field']}：{d.get('message')}"
                for d in more[:5]
            )
            extra = f" 等共 {len(more)} 项" if len(more) > 5 else ""
            message += f"（{listed}{extra}）"
    return message


def open_for_writing() -> Engine:
    """The database a command that adds data writes to: created (and migrated) when missing,
    as bootstrapping a service starts with `unit create`, with a note naming where it went so
    that a command run from the wrong folder is noticed."""
    url = get_settings().database_url
    path = sqlite_path(url)
    created = path is not None and not path.exists()
    engine = open_database(url)
    if created:
        print(
            f"注意：数据库文件 {path} 原不存在，已新建（JINQIU_DATABASE_URL 可指定位置）",
            file=sys.stderr,
        )
    return engine


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (Alembic) to JINQIU_DATABASE_URL (default ./jinqiu.db)."""
    engine = open_database()
    typer.echo(f"schema up to date: {engine.url.render_as_string(hide_password=True)}")


@unit_app.command("create")
def unit_create(
    code: Annotated[str, typer.Option(help="unit code, e.g. WH")],
    name: Annotated[str, typer.Option(help="unit name, e.g. 威海市总工会")],
    level: Annotated[UnitLevel, typer.Option(help="level in the union hierarchy")],
    parent: Annotated[str | None, typer.Option(help="parent unit code")] = None,
    contact_email: Annotated[str | None, typer.Option(help="contact e-mail for reminders")] = None,
    contact_name: Annotated[str | None, typer.Option(help="contact person")] = None,
) -> None:
    """Create a unit (how the first, root unit comes to be)."""
    spec = parse(
        UnitCreate,
        {
            "code": code,
            "name": name,
            "level": level,
            "parent": parent,
            "contact_email": contact_email,
            "contact_name": contact_name,
        },
    )
    engine = open_for_writing()
    with transaction(engine) as conn:
        unit_id = create_unit(conn, spec)
    typer.echo(f"unit {code} created (id {unit_id})")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option()],
    unit: Annotated[str, typer.Option(help="unit code")],
    role: Annotated[list[Role], typer.Option(help="role; repeat for several")],
    display_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a user with one or more roles in a unit."""
    spec = parse(
        UserCreate,
        {
            "username": username,
            "password": password,
            "unit": unit,
            "roles": role,
            "display_name": display_name,
        },
    )
    engine = open_for_writing()
    with transaction(engine) as conn:
        user_id = create_user(conn, spec, SystemClock())
    typer.echo(f"user {username} created (id {user_id})")


@user_app.command("unlock")
def user_unlock(
    username: Annotated[str | None, typer.Option(help="lift this username's sign-in lock")] = None,
    address: Annotated[str | None, typer.Option(help="lift this client address's lock")] = None,
) -> None:
    """Lift the sign-in lock that five failures in 15 minutes put on a username (or address)."""
    from sqlalchemy import select

    from jinqiu.api.security import clear_address, clear_failures
    from jinqiu.workflow.errors import NotFound
    from jinqiu.workflow.users.models import User

    if username is None and address is None:
        raise ValidationFailed("请指定 --username 或 --address")
    engine = open_existing_database()
    with transaction(engine) as conn:
        if username is not None:
            user_t = User.__table__  # type: ignore[attr-defined]
            if (
                conn.execute(select(user_t.c.id).where(user_t.c.username == username)).first()
                is None
            ):
                raise NotFound(f"用户 {username} 不存在")
            cleared = clear_failures(conn, username)
            typer.echo(f"user {username} unlocked ({cleared} recent failures cleared)")
        if address is not None:
            cleared = clear_address(conn, address)
            typer.echo(f"address {address} unlocked ({cleared} recent failures cleared)")


@user_app.command("set-password")
def user_set_password(
    username: Annotated[str, typer.Option()],
    password: Annotated[
        str,
        typer.Option(
            prompt="新密码",
            hide_input=True,
            confirmation_prompt=True,
            help="asked for when not given (keeps it out of the shell history)",
        ),
    ],
) -> None:
    """Set a user's password: ends all their sessions and lifts their sign-in lock."""
    from jinqiu.api.security import clear_failures
    from jinqiu.workflow.users.service import set_password

    engine = open_existing_database()
    with transaction(engine) as conn:
        set_password(conn, username, password)
        clear_failures(conn, username)
    typer.echo(f"password of {username} set; their sessions are ended")


@campaign_app.command("load")
def campaign_load(file: Annotated[Path, typer.Argument(help="the campaign file (JSON)")]) -> None:
    """Load a campaign file (UTF-8, or GB18030/GBK as Chinese Windows saves it); prints its id."""
    spec = read_campaign_file(file)
    check_campaign_tables(spec)
    engine = open_for_writing()
    with transaction(engine) as conn:
        campaign_id = load_campaign(conn, spec, SystemClock())
    for warning in campaign_warnings(spec):  # loaded all the same: the organiser decides
        typer.echo(f"警告 [{warning['code']}]：{warning['message']}", err=True)
    typer.echo(campaign_id)


@app.command("import")
def import_command(
    file: Annotated[
        Path | None, typer.Argument(help="the filled 摸底表 (.xlsx, or .csv in UTF-8/GB18030)")
    ] = None,
    campaign: Annotated[
        int | None, typer.Option(min=1, max=MAX_DB_INT, help="the campaign's id")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="the unit whose register it is")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check every row, write nothing")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the good rows, report the rest")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="write the file back with a 错误说明 column (.xlsx)")
    ] = None,
    template: Annotated[
        bool, typer.Option("--template", help="write the import template instead")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="where --template writes")] = None,
) -> None:
    """Import a survey spreadsheet (摸底表) into the register, creating a case for each row
    that applies; or, with --template, write the template. Exits 1 when rows are bad and
    nothing was written, 2 when the file cannot be read."""
    from jinqiu.api.cli.imports import run_import, write_template

    if template:
        write_template(out or Path("摸底表导入模板.xlsx"), campaign)
        return
    if file is None or campaign is None or unit is None:
        raise CliError("usage_error", "用法：jinqiu import FILE --campaign ID --unit CODE")
    if not run_import(
        file, campaign, unit, dry_run=dry_run, skip_invalid=skip_invalid, report=report
    ):
        raise typer.Exit(code=1)


@app.command("machine")
def machine(fmt: Annotated[str, typer.Option("--format", help="mermaid")] = "mermaid") -> None:
    """Print the case state machine."""
    if fmt != "mermaid":
        raise CliError("invalid_format", f"只支持 --format mermaid，收到 {fmt!r}")
    typer.echo(to_mermaid(), nl=False)


@app.command("roles")
def roles() -> None:
    """Print the role → permission table."""
    for role, perms in permission_table():
        typer.echo(f"{role:<10} {', '.join(perms)}")


class Finding(Protocol):
    def describe(self) -> str: ...


def exit_if_any(label: str, findings: Sequence[Finding], *, otherwise: str) -> None:
    """What a `verify` command found, one line each on stderr after `label`, and exit 1; or,
    when it found nothing, the `otherwise` line."""
    if findings:
        for item in findings:
            typer.echo(f"{label} {item.describe()}", err=True)
        raise typer.Exit(code=1)
    typer.echo(otherwise)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every case's, publicity list's and employment record's audit chain; exit 1 naming
    the first broken entry of each."""
    engine = open_existing_database()
    with engine.connect() as conn:
        broken = [
            *verify_case_chains(conn),
            *verify_list_chains(conn),
            *verify_record_chains(conn),
        ]
    exit_if_any("BROKEN", broken, otherwise="audit chains intact")


@counters_app.command("verify")
def counters_verify(
    campaign: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_DB_INT, help="only this campaign (default: every one)"),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="set differing counters to the recount")
    ] = False,
) -> None:
    """Recount the dashboard's counters from the cases (and its reminder, report and unit counts
    from the ledger, the reports and the units); exit 1 naming each difference, or with
    --repair set those counters to the recount (printing each) and exit 0."""
    engine = open_existing_database()
    if repair:
        with transaction(engine) as conn:
            repaired: list[CounterDifference | TallyDifference] = [
                *repair_counters(conn, campaign),
                *repair_tallies(conn, campaign),
            ]
        for item in repaired:
            typer.echo(f"REPAIRED {item.describe()}")
        typer.echo(
            f"counters repaired: {len(repaired)}" if repaired else "counters match the cases"
        )
        return
    with snapshot(engine) as conn:
        differences: list[CounterDifference | TallyDifference] = [
            *counter_differences(conn, campaign),
            *tally_differences(conn, campaign),
        ]
    exit_if_any("DIFFERS", differences, otherwise="counters match the cases")


@app.command("tick")
def tick_command(
    now: Annotated[
        str | None, typer.Option(help="ISO-8601 instant to sweep as of (default: now)")
    ] = None,
    within: Annotated[
        str | None,
        typer.Option(
            help="a unit's code: sweep only the campaigns it or a unit below it organises "
            "(default: JINQIU_SWEEP_WITHIN, else every campaign)"
        ),
    ] = None,
) -> None:
    """Run one scheduler sweep as of NOW, deliver the due outbox messages, print what happened.
    Exits 1 when a campaign could not be swept (each named on stderr; the others were)."""
    from jinqiu.workflow.clock import ManualClock
    from jinqiu.workflow.config import get_settings
    from jinqiu.workflow.tick import tick

    clock: SystemClock | ManualClock = SystemClock()
    if now is not None:
        clock = ManualClock(parse_instant(now))
    engine = open_existing_database()
    settings = get_settings()
    if within is not None and (len(within) > 64 or not within.strip()):
        raise CliError("invalid_within", "--within 须为单位代码（1–64 个字符）")
    scope = within or settings.sweep_within
    if scope is not None:
        from jinqiu.workflow.deadlines.sweep import campaigns_within

        try:
            campaigns_within(engine, scope)
        except NotFound as missing:
            raise CliError("not_found", f"--within：{missing.message}") from None
    report = tick(engine, clock, settings, within=scope)
    swept = report.sweep
    typer.echo(f"sweep as of {swept.now.isoformat()}")
    typer.echo(
        f"  publicity ended: {len(swept.publicity.ended)}, held by objection: "
        f"{len(swept.publicity.held_by_objection)}"
    )
    typer.echo(f"  follow-up closed, the campaign ended: {swept.follow_up.count}")
    for r in swept.reminders:
        target = (
            r.unit_code
            if r.notified_unit_code == r.unit_code
            else f"{r.unit_code} → {r.notified_unit_code}"
        )
        typer.echo(
            f"  {r.kind:<10} {r.deadline_key:<20} {target:<24} occurrence {r.occurrence:>2}, "
            f"pending {r.pending_total}"
        )
    typer.echo(f"  reminders: {len(swept.reminders)} new, {swept.already_sent} already sent")
    typer.echo(f"  failed campaigns: {len(swept.failed_campaigns)}")
    d = report.delivery
    typer.echo(f"delivery: {d.sent} sent, {d.retried} to retry, {d.failed} failed")
    if swept.failures:
        seen: set[int | None] = set()
        for f in swept.failures:
            if f.campaign_id in seen:
                continue
            seen.add(f.campaign_id)
            what = (
                "定时任务整体"
                if f.campaign_id is None
                else f"活动 {f.campaign_id}「{f.campaign_name}」"
            )
            stages = sum(1 for g in swept.failures if g.campaign_id == f.campaign_id)
            print(
                one_line(
                    f"警告 [sweep_failed]：{what}在「{f.stage}」出错"
                    f"{f'（共 {stages} 处）' if stages > 1 else ''}：{f.error}；其他活动已照常处理"
                    f"{log_note()}"
                ),
                file=sys.stderr,
            )
        raise typer.Exit(code=1)


# The longest ISO-8601 instant Python reads is 32 characters; a longer value is not echoed back.
MAX_INSTANT_CHARS = 64


def parse_instant(value: str) -> dt.datetime:
    if len(value) > MAX_INSTANT_CHARS:
        raise CliError(
            "invalid_now",
            f"--now 须为 ISO-8601 时间（如 2024-07-29T09:00:00+08:00），收到的值长 {len(value)} 个字符",
        )
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            "invalid_now",
            f"--now 须为 ISO-8601 时间（如 2024-07-29T09:00:00+08:00），收到 {value!r}",
        ) from None
    if not EARLIEST <= instant.year <= LATEST:
        raise CliError("invalid_now", f"--now 须在 {EARLIEST} 年至 {LATEST} 年之间，收到 {value!r}")
    return instant


@app.command("demo")
def demo(
    cases: Annotated[int, typer.Option(min=1, max=100_000, help="synthetic cases to survey")] = 300,
    seed: Annotated[int, typer.Option(help="random seed for the synthetic families")] = 2024,
    database: Annotated[
        str | None,
        typer.Option(help="database URL (default: JINQIU_DATABASE_URL, else ./jinqiu.db)"),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="empty the database first: deletes the SQLite file, or drops and recreates the PostgreSQL schema",
        ),
    ] = False,
) -> None:
    """Run the 2024 Weihai campaign end to end into the database `jinqiu serve` then shows,
    with one user per role (their passwords printed once)."""
    from jinqiu.api.cli.doctor import shown_url
    from jinqiu.demo.run import create_demo_accounts, run_demo

    choice = resolve_database(database)
    url = choice.url
    typer.echo(f"demo database: {shown_url(url)}")
    if reset:
        reset_database(url)
    elif not database_is_empty(url):
        raise CliError(
            "database_not_empty",
            f"演示会写入自己的单位、活动和用户，需要空数据库；{shown_url(url)} 中已有数据。"
            "确认可以清空（全部删除）后加 --reset 再运行（make demo DEMO_ARGS=--reset），"
            "或用 --database 指定另一个数据库",
        )
    engine = open_database(url)
    summary = run_demo(engine, cases=cases, seed=seed)
    accounts = create_demo_accounts(engine, SystemClock())
    engine.dispose()
    typer.echo("")
    typer.echo("演示用户（每个角色一个；密码随机生成，只显示这一次）：")
    for account in accounts:
        typer.echo(
            f"  {account.role:<9} {account.username:<14} {account.unit:<10} {account.password}"
        )
    settings = get_settings()
    env = (
        ""
        if choice.source == "JINQIU_DATABASE_URL" and url == settings.database_url
        else (f"JINQIU_DATABASE_URL={shlex.quote(url)} ")
    )
    jinqiu = shlex.quote(sys.argv[0]) if sys.argv and sys.argv[0].endswith("jinqiu") else "jinqiu"
    typer.echo("")
    typer.echo("启动服务：")
    typer.echo(f"  {env}{jinqiu} serve")
    typer.echo(f"然后在浏览器打开 {settings.base_url}/login ，用上面的 demo.manager 登录查看看板")
    if summary["broken"] or summary["sweep_failures"]:
        raise typer.Exit(code=1)


# How long uvicorn's supervisor waits for a worker's answer before it kills it as hung (workers > 1).
WORKER_HEALTHCHECK_S = 60


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Run the HTTP API and the scheduler (schema created or upgraded first)."""
    from jinqiu.api.cli.listen import run_uvicorn
    from jinqiu.api.security import check_settings
    from jinqiu.workflow.config import get_settings

    # Before anything starts: a missing or short key is refused, a SQLite file gets one.
    check_settings(get_settings())
    open_database().dispose()
    # Every worker builds its app with the scheduler on (jinqiu.api.app.serve_app); the ledger keeps
    # each reminder exactly once however many sweep. proxy_headers=False: uvicorn would believe
    # X-Forwarded-For from loopback; the app believes it only from JINQIU_TRUSTED_PROXIES.
    # run_uvicorn: uvicorn.run, with TCP_NODELAY on the workers' connections too (listen.py).
    # timeout_worker_healthcheck: uvicorn's supervisor kills a worker that has not answered its
    # first ping within 5 s, and a spawned worker answers only once it has imported this command's
    # module again (~2.6 s of CPU): on a loaded machine every worker was killed before it started.
    run_uvicorn(
        "jinqiu.api.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def main() -> None:
    tune_collector()
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """The command's exit code: 0, 1 for findings (`audit verify`, `tick`), 2 for any error."""
    _log_to_file()
    try:
        result = app(args=argv, prog_name="jinqiu", standalone_mode=False)
    except KeyboardInterrupt:
        return 130
    except DomainError as error:
        say_error(error.code, error_message(error))
        return 2
    except OperationalError as error:  # cannot connect, locked, a table missing...
        log.error("database error", exc_info=error)
        say_error("database_error", f"数据库出错：{first_line(error.orig)}{log_note()}")
        return 2
    except PydanticValidationError as error:
        if error.title != "Settings":  # not the environment's: a bug, said as one below
            return _unexpected(error)
        problems = "；".join(
            f"JINQIU_{p['field'].replace('.', '_').upper()}：{p['message']}"
            for p in validation_problems(error)
        )
        say_error("invalid_setting", f"环境变量配置有误：{problems}")
        return 2
    except OSError as error:
        say_error("os_error", f"系统错误：{error.strerror or error}（{error.filename or ''}）")
        return 2
    except Exception as error:  # a bug or an unforeseen state: one line, the traceback logged
        if _is(error, "Exit"):  # typer.Exit, raised outside a command
            return int(getattr(error, "exit_code", 1))
        if _is(error, "Abort"):
            return 130
        if _is(error, "NoArgsIsHelpError"):  # `jinqiu unit`: the help, as before
            print(error.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return 2
        if _is(error, "ClickException"):
            say_error("usage_error", usage_message(error))
            return 2
        return _unexpected(error)
    return result if isinstance(result, int) else 0


def _unexpected(error: Exception) -> int:
    """A bug or an unforeseen state: one line, the traceback logged."""
    log.error("unexpected error", exc_info=error)
    kind = "数据库" if isinstance(error, SQLAlchemyError) else "程序"
    text = first_line(getattr(error, "orig", None) or error)
    say_error(
        "internal_error", f"意外的{kind}错误 {type(error).__name__}：{text[:200]}{log_note()}"
    )
    return 2


def _is(error: BaseException, name: str) -> bool:
    """By class name: typer raises its own vendored click's exceptions (or click's, in older
    releases), so neither import would match both."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


def usage_message(error: Exception) -> str:
    hint = "；用 jinqiu --help 查看用法"
    param = getattr(error, "param", None)
    opts = "/".join(getattr(param, "opts", None) or [getattr(param, "name", None) or "参数"])
    message = str(getattr(error, "message", "") or error)
    if _is(error, "NoSuchOption"):
        return f"没有选项 {getattr(error, 'option_name', message)}{hint}"
    if _is(error, "MissingParameter"):
        return f"缺少参数 {opts}{hint}"
    if _is(error, "BadParameter"):
        return f"{opts} 的取值无效：{message}{hint}"
    if message.startswith("No such command"):
        return f"没有这个命令：{message.removeprefix('No such command').strip(' .')}{hint}"
    return f"命令行参数有误：{message}{hint}"


def first_line(value: Any) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__


log = logging.getLogger("jinqiu")


class _LazyFileHandler(logging.Handler):
    """The CLI's log: a file in the temp directory, made on the first record (most runs log
    nothing), so tracebacks never reach the terminal."""

    path: Path | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if _LazyFileHandler.path is None:
            fd, name = tempfile.mkstemp(prefix="jinqiu-error-", suffix=".log")
            os.close(fd)
            _LazyFileHandler.path = Path(name)
        with _LazyFileHandler.path.open("a", encoding="utf-8") as out:
            if record.exc_info:
                out.write("".join(traceback.format_exception(*record.exc_info)))
            out.write(f"{record.levelname} {record.name}: {record.getMessage()}\n")


def _log_to_file() -> None:
    if not any(isinstance(h, _LazyFileHandler) for h in log.handlers):
        log.addHandler(_LazyFileHandler(logging.WARNING))
        log.propagate = False  # not to the last-resort handler, which prints tracebacks


def log_note() -> str:
    path = _LazyFileHandler.path
    return f"（详情见 {path}）" if path is not None else ""
