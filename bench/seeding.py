"""Shared pieces of the sweep, dashboard and http benchmarks: a province-sized unit tree, the
province's campaign with four deadlines, synthetic households, and bulk loading straight into
the service's tables (COPY on PostgreSQL, executemany on SQLite with synchronous=OFF during the
load only).

The loaded rows are consistent with what the service itself would have written: every case has
its worker and student rows, valid identity numbers (unique per campaign), and the dashboard's
unit_case_count rows are computed from the loaded cases (every unit on a case's path counts
it). Two shortcuts, said where they matter: loaded cases carry no audit
entries (audit_seq 0, audit_head '': an empty chain, which `verify_chains` accepts), and the fund
rows are not charged for the approved amounts (no bench here measures funds).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine, text

from bench.common import BenchDatabase, say
from jinqiu.states import CaseState
from jinqiu.states.case_lifecycle import history_to
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import STATES
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import check_character_of, weighted_sum

T = TypeVar("T")

PROVINCE = ("SD", "山东省总工会")
CITY_NAMES = (
    "济南",
    "青岛",
    "淄博",
    "枣庄",
    "东营",
    "烟台",
    "潍坊",
    "济宁",
    "泰安",
    "威海",
    "日照",
    "临沂",
    "德州",
    "聊城",
    "滨州",
    "菏泽",
)
GRASSROOTS_KINDS = (
    "纺织公司工会",
    "机械厂工会",
    "水产公司工会",
    "街道总工会",
    "物业公司工会",
    "汽车配件公司工会",
    "食品公司工会",
    "建筑公司工会",
)

# The province's campaign: the Weihai 2024 phases, with four deadlines around 2024-07-31.
CAMPAIGN_FILE = Path(__file__).resolve().parents[1] / "examples" / "campaigns" / "weihai-2024.json"
SWEEP_DAY = dt.datetime(2024, 7, 31, 8, 0)  # Wed: every deadline has something due
QUIET_DAY = dt.datetime(2024, 7, 22, 8, 0)  # Mon: no deadline has anything due yet
DEADLINES = (
    # grassroots: no case left in survey, due today (T-0 reminders)
    {
        "key": "survey_materials",
        "title": "报送新增困难职工档案申报材料和摸底表",
        "due": "2024-07-31",
        "responsible_level": "grassroots",
        "done_when": {"no_cases_in": [CaseState.SURVEY.value]},
    },
    # districts: archive checks done, 3 working days overdue (overdue + escalation to the city)
    {
        "key": "archive_review",
        "title": "完成困难职工档案核查",
        "due": "2024-07-26",
        "responsible_level": "district",
        "done_when": {"no_cases_in": [CaseState.ARCHIVE_CHECK.value]},
    },
    # districts: the statistics table, due tomorrow (T-1 reminders)
    {
        "key": "statistics_report",
        "title": "报送活动总结和统计表",
        "due": "2024-08-01",
        "responsible_level": "district",
        "done_when": {"report_submitted": "statistics"},
    },
    # cities: the demand summary, 1 working day overdue (no escalation yet)
    {
        "key": "demand_summary",
        "title": "报送资金需求情况汇总表",
        "due": "2024-07-30",
        "responsible_level": "city",
        "done_when": {"report_submitted": "demand_summary"},
    },
)
PENDING_EVERY = 10  # every 10th responsible unit owes something: 10% of units get a reminder

UTC = dt.UTC


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loadavg() -> list[float]:
    """The machine's 1/5/15-minute load averages (2 cores, shared): context for the figures."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def sql_time(when: dt.datetime) -> str:
    """A UTCDateTime value as both databases take it from text: naive UTC, with microseconds
    (SQLAlchemy's SQLite storage format, and a valid PostgreSQL timestamp literal)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


# -- the unit tree -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitRow:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    path: str
    contact_name: str | None
    contact_email: str | None
    webhook_url: str | None


@dataclass
class ProvinceTree:
    province: UnitRow
    cities: list[UnitRow]
    districts: list[UnitRow]  # district and industry unions, city by city
    grassroots: list[UnitRow]  # grassroots and street unions, district by district
    by_id: dict[int, UnitRow]

    @property
    def units(self) -> list[UnitRow]:
        return [self.province, *self.cities, *self.districts, *self.grassroots]

    def __len__(self) -> int:
        return 1 + len(self.cities) + len(self.districts) + len(self.grassroots)

    def ancestors(self, unit: UnitRow) -> list[UnitRow]:
        """The unit and every unit above it, up to the province."""
        out = [unit]
        while out[-1].parent_id is not None:
            out.append(self.by_id[out[-1].parent_id])
        return out


def province_tree(units: int) -> ProvinceTree:
    """A 4-level tree of exactly `units` units: province → cities → districts → grassroots.
    100,000 units: 20 cities, 10 districts each (every 8th an industry union), 99,779
    grassroots unions (every 10th a street union) spread evenly over the 200 districts.
    Cities and districts have a robot webhook as well as an e-mail address."""
    cities_n = max(1, min(20, units // 5000))
    per_city = max(1, min(10, units // cities_n // 50))
    grassroots_n = units - 1 - cities_n - cities_n * per_city
    if grassroots_n < cities_n * per_city:
        raise SystemExit(f"--units {units} is too few for a 4-level tree")
    code, name = PROVINCE
    province = UnitRow(
        1,
        code,
        name,
        "province",
        None,
        f"/{code}/",
        "省总工会帮扶中心",
        f"{code.lower()}@example.org",
        None,
    )
    next_id = 2
    cities: list[UnitRow] = []
    for c in range(cities_n):
        c_code = f"{code}-C{c + 1:02d}"
        c_name = f"{CITY_NAMES[c % len(CITY_NAMES)]}{'' if c < len(CITY_NAMES) else c + 1}市总工会"
        cities.append(
            UnitRow(
                next_id,
                c_code,
                c_name,
                "city",
                province.id,
                f"{province.path}{c_code}/",
                f"{c_name}帮扶中心",
                f"{c_code.lower()}@example.org",
                f"https://robot.example.org/hook/{c_code.lower()}",
            )
        )
        next_id += 1
    districts: list[UnitRow] = []
    for city in cities:
        for d in range(per_city):
            d_code = f"{city.code}-D{d + 1:02d}"
            industry = len(districts) % 8 == 7
            d_name = f"{city.name[:-3]}{'第' + str(d + 1) + '产业' if industry else '第' + str(d + 1) + '区'}总工会"
            districts.append(
                UnitRow(
                    next_id,
                    d_code,
                    d_name,
                    "industry" if industry else "district",
                    city.id,
                    f"{city.path}{d_code}/",
                    f"{d_name}帮扶中心",
                    f"{d_code.lower()}@example.org",
                    f"https://robot.example.org/hook/{d_code.lower()}",
                )
            )
            next_id += 1
    grassroots: list[UnitRow] = []
    base, extra = divmod(grassroots_n, len(districts))
    for i, district in enumerate(districts):
        for g in range(base + (1 if i < extra else 0)):
            g_code = f"{district.code}-{g + 1:04d}"
            kind = GRASSROOTS_KINDS[g % len(GRASSROOTS_KINDS)]
            street = g % 10 == 5
            grassroots.append(
                UnitRow(
                    next_id,
                    g_code,
                    f"{district.name[:-3]}{'第' + str(g + 1) + '街道' if street else kind}",
                    "street" if street else "grassroots",
                    district.id,
                    f"{district.path}{g_code}/",
                    "经办人",
                    f"{g_code.lower()}@example.org",
                    None,
                )
            )
            next_id += 1
    tree = ProvinceTree(province, cities, districts, grassroots, {})
    tree.by_id = {u.id: u for u in tree.units}
    assert len(tree) == units
    return tree


UNIT_COLUMNS = (
    "id",
    "code",
    "name",
    "level",
    "parent_id",
    "path",
    "contact_name",
    "contact_email",
    "webhook_url",
)


def unit_rows(tree: ProvinceTree) -> Iterator[tuple[Any, ...]]:
    for u in tree.units:
        yield (
            u.id,
            u.code,
            u.name,
            u.level,
            u.parent_id,
            u.path,
            u.contact_name,
            u.contact_email,
            u.webhook_url,
        )


# -- the campaign ------------------------------------------------------------------------------


def province_campaign(organizer: str = PROVINCE[0]) -> CampaignFile:
    """Weihai 2024's phases, aid rules and reminder settings, organised by the province, with
    the four deadlines above."""
    raw = json.loads(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    raw.update(name="2024年度全省金秋助学活动", organizer=organizer, deadlines=list(DEADLINES))
    for fund in raw["funds"]:
        fund["budget"] = "20000000"  # 20 million yuan per source (BIGINT fen, migration 0008)
    return CampaignFile.model_validate(raw)


def load_province_campaign(engine: Engine, clock: ManualClock) -> tuple[int, dict[str, int]]:
    """The campaign through the service's own loader; returns its id and deadline ids by key."""
    with transaction(engine) as conn:
        campaign_id = load_campaign(conn, province_campaign(), clock)
        deadlines = {
            r.key: int(r.id)
            for r in conn.execute(
                text("SELECT id, key FROM campaign_deadline WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
        }
    return campaign_id, deadlines


# -- synthetic households ----------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
)
GIVEN = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "建国",
    "志红",
    "晓东",
    "海燕",
    "子涵",
    "欣怡",
    "梓萱",
    "一诺",
    "雨桐",
    "思远",
)
SCHOOLS = ("山东大学", "中国海洋大学", "青岛大学", "鲁东大学", "山东财经大学", "山东师范大学")


class IdNumbers:
    """Valid 18-character identity numbers, distinct for distinct n, fast: the mod-11 check sum
    (jinqiu.workflow.identity's) is added up from precomputed parts (region, birth date, 3-digit
    sequence) — 15× faster than make_id_number, which weighs all 17 digits each time."""

    def __init__(self, region: str, first_birthday: dt.date, days: int) -> None:
        self.region = region
        self._region_sum = weighted_sum(region, 0)
        self.dates: list[tuple[str, dt.date, int]] = []
        for i in range(days):
            day = first_birthday + dt.timedelta(days=i)
            digits = day.strftime("%Y%m%d")
            self.dates.append((digits, day, weighted_sum(digits, 6)))
        self._seqs = [(f"{s:03d}", weighted_sum(f"{s:03d}", 14)) for s in range(1000)]

    def __call__(self, n: int) -> tuple[str, dt.date, str]:
        """The n-th number, its birth date and gender (odd sequence: male)."""
        digits, day, day_sum = self.dates[n // 1000 % len(self.dates)]
        seq, seq_sum = self._seqs[n % 1000]
        check = check_character_of(self._region_sum + day_sum + seq_sum)
        return (f"{self.region}{digits}{seq}{check}", day, "male" if n % 2 else "female")


WORKER_COLUMNS = (
    "id",
    "name",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "household_size",
    "monthly_income_per_capita_fen",
    "hardship_cause",
    "archive_status",
    "archived_on",
    "categories",
)
STUDENT_COLUMNS = (
    "id",
    "name",
    "id_number",
    "gender",
    "birth_date",
    "relation",
    "education_level",
    "school",
    "enrollment_year",
    "program_years",
    "admitted_school",
    "tier",
)
CASE_COLUMNS = (
    "id",
    "campaign_id",
    "unit_id",
    "worker_id",
    "student_id",
    "student_id_number",
    "state",
    "version",
    "approval_step",
    "objection_open",
    "publicity_started_on",
    "publicity_ends_on",
    "approved_amount_fen",
    "paid_on",
    "payment_failures",
    "audit_seq",
    "audit_head",
    "created_by",
    "created_at",
    "updated_at",
)


def _shape(state: CaseState, levels: int = 3) -> tuple[int, int, bool, bool, bool]:
    """How far a case in `state` has come, from the lifecycle's shortest way there (the
    Weihai campaign's three levels): (version, approval_step, publicity, amount, paid)."""
    effects = [e for t in history_to(state, levels=levels) for e in t.effects]
    return (
        1 + len(history_to(state, levels=levels)),
        effects.count("advance_approval_level"),
        "start_publicity" in effects,
        "reserve_aid" in effects,
        "record_payment" in effects,
    )


_STATE_SHAPE = {state.value: _shape(state) for state in CaseState}


@dataclass
class LoadedCases:
    count: int
    first_id: int
    by_unit_state: Counter[tuple[int, str]]  # (grassroots unit id, state) → cases


class Households:
    """Case, worker and student rows for bulk loading, deterministic in the case number."""

    def __init__(self, *, campaign_id: int, created: dt.datetime) -> None:
        self.campaign_id = campaign_id
        self.workers = IdNumbers("370102", dt.date(1970, 1, 1), 5000)
        self.students = IdNumbers("370203", dt.date(2000, 1, 1), 5000)
        self.created = sql_time(created)
        self.publicity = ("2024-08-01", "2024-08-08")
        self.paid_on = "2024-08-23"

    def rows(
        self, n: int, unit_id: int, state: str, created_by: str
    ) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        """The n-th household (n ≥ 1): worker, student and case rows, all with id n."""
        w_number, w_born, w_gender = self.workers(n)
        s_number, s_born, s_gender = self.students(n)
        name = SURNAMES[n % len(SURNAMES)]
        worker = (
            n,
            name + GIVEN[n % len(GIVEN)],
            w_number,
            w_gender,
            w_born.isoformat(),
            f"138{n % 100_000_000:08d}",
            3 + n % 3,
            60000 + n % 50 * 1000,
            "配偶患重病，长期医治",
            "deep",
            "2024-03-01",
            "[]",
        )
        school = SCHOOLS[n % len(SCHOOLS)]
        student = (
            n,
            name + GIVEN[(n // 7) % len(GIVEN)],
            s_number,
            s_gender,
            s_born.isoformat(),
            "子" if s_gender == "male" else "女",
            "undergraduate",
            school,
            2024,
            4,
            school,
            "first",
        )
        version, step, publicity, amount, paid = _STATE_SHAPE[state]
        case = (
            n,
            self.campaign_id,
            unit_id,
            n,
            n,
            s_number,
            state,
            version,
            step,
            0,
            self.publicity[0] if publicity else None,
            self.publicity[1] if publicity else None,
            300000 if amount else None,
            self.paid_on if paid else None,
            0,
            0,
            "",
            created_by,
            self.created,
            self.created,
        )
        return worker, student, case


def load_cases(
    loader: Loader,
    households: Households,
    assignments: Iterable[tuple[UnitRow, str]],
    *,
    first_id: int = 1,
) -> LoadedCases:
    """One case per (grassroots unit, state), in the order given, with ids from `first_id`."""
    by_unit_state: Counter[tuple[int, str]] = Counter()
    workers: list[tuple[Any, ...]] = []
    students: list[tuple[Any, ...]] = []
    cases: list[tuple[Any, ...]] = []
    n = first_id - 1
    for unit, state in assignments:
        n += 1
        w, s, c = households.rows(n, unit.id, state, f"clerk.{unit.code.lower()}")
        workers.append(w)
        students.append(s)
        cases.append(c)
        by_unit_state[unit.id, state] += 1
    loader.copy("worker", WORKER_COLUMNS, workers)
    loader.copy("student", STUDENT_COLUMNS, students)
    loader.copy("aid_case", CASE_COLUMNS, cases)
    return LoadedCases(len(cases), first_id, by_unit_state)


def counter_rows(
    tree: ProvinceTree, campaign_id: int, by_unit_state: Counter[tuple[int, str]]
) -> list[tuple[Any, ...]]:
    """unit_case_count rows as the transitions would have kept them: every unit on each case's
    path counts it, one row per unit, a column per state."""
    totals: Counter[tuple[str, str]] = Counter()
    parents: dict[str, str | None] = {}
    for (unit_id, state), n in by_unit_state.items():
        for unit in tree.ancestors(tree.by_id[unit_id]):
            totals[unit.code, state] += n
            parents[unit.code] = None if unit.parent_id is None else tree.by_id[unit.parent_id].code
    return unit_counter_rows(campaign_id, totals, parents)


def unit_counter_rows(
    campaign_id: int, totals: Mapping[tuple[str, str], int], parents: Mapping[str, str | None]
) -> list[tuple[Any, ...]]:
    """(unit code, state) → n as unit_case_count rows (COUNTER_COLUMNS), in unit order, each
    with its unit's parent."""
    by_unit: dict[str, dict[str, int]] = {}
    for (code, state), n in totals.items():
        by_unit.setdefault(code, {})[state] = n
    return [
        (campaign_id, code, parents[code], *(by_unit[code].get(state, 0) for state in STATES))
        for code in sorted(by_unit)
    ]


COUNTER_COLUMNS = ("campaign_id", "unit_code", "parent_code", *STATES)


# -- bulk loading ------------------------------------------------------------------------------


def pg_schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    return str(value)


class Loader:
    """Bulk inserts on the bare driver, on the service's own database: COPY on PostgreSQL;
    executemany in one transaction per table on SQLite, with synchronous=OFF on this loading
    connection only (the service's connections keep synchronous=NORMAL). Tables written with
    explicit ids get their PostgreSQL sequences moved past them at the end, and the loaded
    tables are ANALYZEd on PostgreSQL (autovacuum would do it soon after a real load)."""

    def __init__(self, db: BenchDatabase) -> None:
        self.kind = db.kind
        self.rows = 0
        self.tables: set[str] = set()
        self.with_ids: set[str] = set()  # tables written with explicit ids
        self._pg: psycopg.Connection[Any] | None = None
        self._lite: sqlite3.Connection | None = None
        if db.kind == "postgresql":
            assert db.pg_url is not None
            self.schema = pg_schema(db.engine)
            self._pg = psycopg.connect(db.pg_url, options=f"-csearch_path={self.schema}")
        else:
            database = db.engine.url.database
            assert database is not None
            self.schema = ""
            self._lite = sqlite3.connect(database, isolation_level=None)
            self._lite.execute("PRAGMA synchronous=OFF")
            self._lite.execute("PRAGMA cache_size=-200000")  # 200 MB for the index builds
            self._lite.execute("PRAGMA foreign_keys=OFF")  # consistent by construction

    def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        count = 0
        names = ", ".join(columns)
        if self._pg is not None:
            with self._pg.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                buffer: list[str] = []
                for row in rows:
                    buffer.append("\t".join(map(_copy_text, row)))
                    count += 1
                    if len(buffer) >= 20000:
                        copy.write("\n".join(buffer) + "\n")
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
            self._pg.commit()
        else:
            assert self._lite is not None
            marks = ", ".join("?" for _ in columns)
            self._lite.execute("BEGIN IMMEDIATE")
            cursor = self._lite.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            count = cursor.rowcount
            self._lite.execute("COMMIT")
        self.rows += count
        self.tables.add(table)
        if "id" in columns:
            self.with_ids.add(table)
        return count

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self._pg is not None:
            self._pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            self._pg.commit()
        else:
            assert self._lite is not None
            self._lite.execute(sql, params)

    def finish(self) -> None:
        if self._pg is not None:
            for table in sorted(self.with_ids):
                self._pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"GREATEST((SELECT max(id) FROM {table}), 1))"
                )
            self._pg.commit()
            self._pg.autocommit = True
            for table in sorted(self.tables | {"campaign", "campaign_deadline"}):
                self._pg.execute(f"ANALYZE {table}")
            self._pg.autocommit = False

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._lite is not None:
            self._lite.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def load_tree(loader: Loader, tree: ProvinceTree) -> None:
    loader.copy("unit", UNIT_COLUMNS, unit_rows(tree))


REPORT_COLUMNS = (
    "campaign_id",
    "unit_id",
    "kind",
    "note",
    "figures",
    "submitted_by",
    "submitted_at",
)
LEDGER_COLUMNS = (
    "campaign_id",
    "deadline_id",
    "unit_id",
    "kind",
    "occurrence",
    "notified_unit_id",
    "pending_total",
    "created_at",
)


def load_reports(
    loader: Loader, tree: ProvinceTree, campaign_id: int, *, when: dt.datetime
) -> dict[str, int]:
    """Every district reports its statistics and every city its demand summary, except every
    10th of each (those are the units the report deadlines remind)."""
    at = sql_time(when)
    rows = [
        (campaign_id, u.id, kind, None, "{}", f"manager.{u.code.lower()}", at)
        for kind, units in (("statistics", tree.districts), ("demand_summary", tree.cities))
        for i, u in enumerate(units)
        if i % PENDING_EVERY != 0
    ]
    loader.copy("report_submission", REPORT_COLUMNS, rows)
    return {
        "statistics_missing": sum(1 for i in range(len(tree.districts)) if i % PENDING_EVERY == 0),
        "demand_summary_missing": sum(1 for i in range(len(tree.cities)) if i % PENDING_EVERY == 0),
    }


def say_load(what: str, seconds: float, rows: int | None = None) -> None:
    rate = f", {rows / seconds:,.0f} rows/s" if rows and seconds > 0 else ""
    say(f"  loaded {what} in {seconds:.1f} s{rate}")
