"""docs/CONTRACT.md is the project's own contract and says only what is true: what it lists as
built (every row not marked **planned**) exists — the commands and their options, the
endpoints, the error codes, the events, the states and the roles — every event and state of
the machine is in it, and the sources cite it by its path and nothing outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from jinqiu.api.app import create_app
from jinqiu.api.cli import app as cli_app
from jinqiu.api.errors import _HTTP_CODES
from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.config import Settings
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.users.models import Role

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "CONTRACT.md"
PLANNED = "**planned**"


def contract() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def built_rows() -> list[str]:
    """Table rows of the contract that are built: not marked planned, nor under a planned
    heading."""
    rows, planned_section = [], False
    for line in contract().splitlines():
        if line.startswith("#"):
            planned_section = PLANNED in line
        elif line.startswith("| ") and not planned_section and PLANNED not in line:
            rows.append(line)
    return rows


def paragraph(starting: str) -> str:
    """The paragraph of the contract that starts with `starting`."""
    text = contract()
    start = text.index(starting)
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)]


def backticked(text: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", text)


def tracked_files() -> list[Path]:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def test_every_citation_of_the_contract_names_its_path_in_the_repository() -> None:
    assert CONTRACT.is_file()
    loose = []
    for path in tracked_files():
        if path.suffix not in {".py", ".md", ".html", ".toml", ".txt", ".cfg"} or path in (
            CONTRACT,
            Path(__file__),
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(r"[\w./-]*CONTRACT\.md", text):
            cited = match.group(0)
            # docs/CONTRACT.md by its path, or a link that leads there from this file's folder
            if (
                not cited.endswith("docs/CONTRACT.md")
                and (path.parent / cited).resolve() != CONTRACT
            ):
                loose.append(f"{path.relative_to(ROOT)}: {cited}")
    assert not loose, "cite docs/CONTRACT.md:\n" + "\n".join(loose)


def test_nothing_points_outside_the_repository() -> None:
    outside = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if "../shared" in path.read_text(encoding="utf-8", errors="replace")
        and path != Path(__file__)
    ]
    assert not outside, outside


def test_every_built_command_exists_with_its_options() -> None:
    commands = [
        re.match(r"\| `jinqiu ([^`]*)`", row)
        for row in built_rows()
        if row.startswith("| `jinqiu ")
    ]
    assert len(commands) >= 12
    runner = CliRunner()
    for found in commands:
        assert found is not None
        for variant in found.group(1).split("` / `"):
            words = [w for w in variant.split() if re.fullmatch(r"[a-z][a-z-]*", w)]
            options = re.findall(r"--[a-z-]+", variant)
            shown = runner.invoke(cli_app, [*words, "--help"], terminal_width=200)
            assert shown.exit_code == 0, f"jinqiu {' '.join(words)}: {shown.output}"
            for option in options:
                assert option in shown.output, f"jinqiu {' '.join(words)} has no {option}"


@pytest.fixture(scope="module")
def openapi(sqlite_engine: Engine) -> dict[str, dict[str, object]]:
    settings = Settings(secret_key="contract-test-secret-0123456789abcdef")
    app = create_app(engine=sqlite_engine, settings=settings)
    paths: dict[str, dict[str, object]] = app.openapi()["paths"]
    return paths


def test_every_built_endpoint_exists(openapi: dict[str, dict[str, object]]) -> None:
    listed = [
        (method, re.sub(r"\{[a-z_]+\}", "{}", path))
        for row in built_rows()
        for method, path in re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/api/[^` ?]*)", row)
    ]
    assert len(listed) >= 25
    served = {
        (method.upper(), re.sub(r"\{[a-z_]+\}", "{}", path))
        for path, operations in openapi.items()
        for method in operations
    }
    assert [e for e in listed if e not in served] == []


def test_the_error_codes_listed_are_the_services() -> None:
    table = [row for row in built_rows() if re.match(r"\| `[a-z_]+`.* \| [0-9]", row)]
    listed = {code for row in table for code in backticked(row.split("|")[1])}

    def codes(cls: type[DomainError]) -> set[str]:
        return {cls.code}.union(*(codes(sub) for sub in cls.__subclasses__()))

    known = codes(DomainError) | {code for code, _message in _HTTP_CODES.values()}
    known.add("internal_error")  # a bulk item that failed unexpectedly
    assert listed and listed <= known, listed - known


def test_the_events_and_states_are_the_machines() -> None:
    events = paragraph("Events: ")
    # The names clients send, and the one the scheduler fires: the paragraph's first two sentences.
    named = events[: events.index("`end_publicity`.") + len("`end_publicity`")]
    assert set(backticked(named)) == {e.value for e in CaseEvent}
    if "**planned" in events.lower():  # events announced, not built yet
        planned = events[events.lower().index("**planned") :]
        assert backticked(planned) and not set(backticked(planned)) & {e.value for e in CaseEvent}
    assert set(backticked(paragraph("States: "))) == {s.value for s in CaseState}


def test_the_roles_are_the_services() -> None:
    roles = set(backticked(paragraph("`clerk` enters")))
    assert roles == {r.value for r in Role} - {Role.SCHEDULER.value}
