"""The `jinqiu` command line (CONTRACT.md)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from states import to_mermaid
from workflow.audit.chain import verify_chains
from workflow.campaigns.service import load_campaign, read_campaign_file
from workflow.clock import SystemClock
from workflow.db import transaction
from workflow.errors import DomainError
from workflow.roles import permission_table
from workflow.runtime import open_database
from workflow.units.models import UnitLevel
from workflow.units.service import UnitCreate, create_unit
from workflow.users.models import Role
from workflow.users.service import UserCreate, create_user
from workflow.validation import parse

app = typer.Typer(help="金秋助学 workflow service", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
unit_app = typer.Typer(help="union units", no_args_is_help=True)
user_app = typer.Typer(help="users", no_args_is_help=True)
campaign_app = typer.Typer(help="campaigns", no_args_is_help=True)
audit_app = typer.Typer(help="the audit trail", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(unit_app, name="unit")
app.add_typer(user_app, name="user")
app.add_typer(campaign_app, name="campaign")
app.add_typer(audit_app, name="audit")


def fail(error: DomainError) -> None:
    typer.echo(f"error [{error.code}]: {error.message}", err=True)
    if isinstance(error.details, list):
        for item in error.details:
            typer.echo(f"  - {item.get('field')}: {item.get('message')}", err=True)
    raise typer.Exit(code=2)


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
    engine = open_database()
    try:
        spec = parse(UnitCreate, {"code": code, "name": name, "level": level, "parent": parent,
                                  "contact_email": contact_email, "contact_name": contact_name})
        with transaction(engine) as conn:
            unit_id = create_unit(conn, spec)
    except DomainError as error:
        fail(error)
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
    engine = open_database()
    try:
        spec = parse(UserCreate, {"username": username, "password": password, "unit": unit,
                                  "roles": role, "display_name": display_name})
        with transaction(engine) as conn:
            user_id = create_user(conn, spec, SystemClock())
    except DomainError as error:
        fail(error)
    typer.echo(f"user {username} created (id {user_id})")


@campaign_app.command("load")
def campaign_load(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load a campaign file; prints its id."""
    engine = open_database()
    try:
        spec = read_campaign_file(file)
        with transaction(engine) as conn:
            campaign_id = load_campaign(conn, spec, SystemClock())
    except DomainError as error:
        fail(error)
    typer.echo(campaign_id)


@app.command("machine")
def machine(fmt: Annotated[str, typer.Option("--format", help="mermaid")] = "mermaid") -> None:
    """Print the case state machine."""
    if fmt != "mermaid":
        typer.echo("only --format mermaid is supported", err=True)
        raise typer.Exit(code=2)
    typer.echo(to_mermaid(), nl=False)


@app.command("roles")
def roles() -> None:
    """Print the role → permission table."""
    for role, perms in permission_table():
        typer.echo(f"{role:<10} {', '.join(perms)}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every case's audit chain; exit 1 naming the first broken entry."""
    engine = open_database()
    with engine.connect() as conn:
        broken = list(verify_chains(conn))
    if broken:
        for item in broken:
            typer.echo(f"BROKEN {item.describe()}", err=True)
        raise typer.Exit(code=1)
    typer.echo("audit chains intact")


@app.command("tick")
def tick_command(
    now: Annotated[str | None, typer.Option(help="ISO-8601 instant to sweep as of (default: now)")] = None,
) -> None:
    """Run one scheduler sweep as of NOW, deliver the due outbox messages, print what happened."""
    import datetime as dt

    from workflow.clock import ManualClock
    from workflow.config import get_settings
    from workflow.tick import tick

    clock: SystemClock | ManualClock = SystemClock()
    if now is not None:
        try:
            clock = ManualClock(dt.datetime.fromisoformat(now))
        except ValueError:
            typer.echo(f"error [invalid_now]: --now 须为 ISO-8601 时间，收到 {now!r}", err=True)
            raise typer.Exit(code=2) from None
    engine = open_database()
    report = tick(engine, clock, get_settings())
    swept = report.sweep
    typer.echo(f"sweep as of {swept.now.isoformat()}")
    typer.echo(f"  publicity ended: {len(swept.publicity.ended)}, held by objection: "
               f"{len(swept.publicity.held_by_objection)}")
    for r in swept.reminders:
        target = r.unit_code if r.notified_unit_code == r.unit_code else f"{r.unit_code} → {r.notified_unit_code}"
        typer.echo(f"  {r.kind:<10} {r.deadline_key:<20} {target:<24} occurrence {r.occurrence:>2}, "
                   f"pending {r.pending_total}")
    typer.echo(f"  reminders: {len(swept.reminders)} new, {swept.already_sent} already sent")
    d = report.delivery
    typer.echo(f"delivery: {d.sent} sent, {d.retried} to retry, {d.failed} failed")


@app.command("demo")
def demo(
    cases: Annotated[int, typer.Option(help="synthetic cases to survey")] = 300,
    seed: Annotated[int, typer.Option(help="random seed for the synthetic families")] = 2024,
    database: Annotated[str | None, typer.Option(help="database URL (default: a fresh SQLite file)")] = None,
) -> None:
    """Run the 2024 Weihai campaign end to end on a fresh database and print what happened."""
    from workflow.demo.run import run_demo

    if database is None:
        path = Path(tempfile.mkdtemp(prefix="jinqiu-demo-")) / "demo.db"
        database = f"sqlite:///{path}"
        typer.echo(f"demo database: {path}")
    engine = open_database(database)
    summary = run_demo(engine, cases=cases, seed=seed)
    if summary["broken"]:
        raise typer.Exit(code=1)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
) -> None:
    """Run the HTTP API and the scheduler (schema created or upgraded first)."""
    import uvicorn

    open_database().dispose()
    # Every worker builds its app with the scheduler on (api.app.serve_app); the ledger keeps
    # each reminder exactly once however many sweep.
    uvicorn.run("api.app:serve_app", factory=True, host=host, port=port, workers=workers)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
