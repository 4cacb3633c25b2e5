"""The campaign files of the five notices (examples/campaigns/) against the notices' own text
(examples/notices/): every `source` a sentence of its notice or a local decision, every cited
item listed in docs/NOTICES.md, every file loading on both databases; and each cited eligibility
rule, document requirement and category condition with a case inside and one outside it, the
refusal giving the notice's words."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select

from jinqiu.demo.units import seed_weihai_tree
from jinqiu.workflow.attachments.service import attach
from jinqiu.workflow.attachments.store import FileStore
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.schema import LOCAL_DECISION, CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign, read_campaign_file
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import GuardFailed, ValidationFailed
from jinqiu.workflow.units.models import Unit, UnitLevel
from jinqiu.workflow.units.service import child_path
from tests.factories import actor, case_row, student, worker

ROOT = Path(__file__).resolve().parents[3]
CAMPAIGNS = ROOT / "examples" / "campaigns"
NOTICES = ROOT / "examples" / "notices"
NOTICES_MD = ROOT / "docs" / "NOTICES.md"
FILES = sorted(p.name for p in CAMPAIGNS.glob("*.json"))
unit_t = Unit.__table__  # type: ignore[attr-defined]
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

# Keys whose list items carry a `source` (the funds' `source` is the fund's name, not a citation),
# each item named by its key field.
CITING_LISTS = {"phases": "key", "deadlines": "key", "categories": "code", "notes": "about"}


def squeezed(text: str) -> str:
    """The notices are laid out for paper (lines broken mid-sentence, spaces around digits):
    a citation is compared with every kind of whitespace taken out of both."""
    return re.sub(r"\s+", "", text)


def raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAMPAIGNS / name).read_text(encoding="utf-8"))
    return data


def cited_items(data: dict[str, Any]) -> dict[str, str]:
    """Every cited item of a campaign file, by its path as docs/NOTICES.md writes it."""
    items: dict[str, str] = {}
    for key, name in CITING_LISTS.items():
        for item in data.get(key, []):
            if "source" in item:
                items[f"{key}[{item[name]}]"] = item["source"]
    for kind in data.get("application_types", []):
        path = f"application_types[{kind['code']}]"
        items[path] = kind["source"]
        for f in kind.get("fields", []):
            if "source" in f:
                items[f"{path}.fields[{f['key']}]"] = f["source"]
        for d in kind.get("documents", []):
            items[f"{path}.documents[{d['kind']}]"] = d["source"]
    if "source" in data.get("eligibility", {}):
        items["eligibility"] = data["eligibility"]["source"]
    follow_up = data.get("follow_up", {})
    if "source" in follow_up:
        items["follow_up"] = follow_up["source"]
    if "closes_on_source" in follow_up:
        items["follow_up.closes_on"] = follow_up["closes_on_source"]
    return items


@pytest.mark.parametrize("name", FILES)
def test_every_source_is_a_sentence_of_its_notice_or_a_local_decision(name: str) -> None:
    data = raw(name)
    notice = squeezed((NOTICES / f"{data['notice']}.txt").read_text(encoding="utf-8"))
    items = cited_items(data)
    assert items, f"{name} cites nothing"
    not_found = {
        path: source
        for path, source in items.items()
        if not source.startswith(LOCAL_DECISION) and squeezed(source) not in notice
    }
    assert not_found == {}


@pytest.mark.parametrize("name", FILES)
def test_notices_md_lists_every_cited_item_and_only_those(name: str) -> None:
    listed = set(re.findall(rf"`{re.escape(name)}: ([^`]+)`", NOTICES_MD.read_text("utf-8")))
    assert listed == set(cited_items(raw(name)))


def test_every_notice_has_a_campaign_file() -> None:
    assert {raw(n)["notice"] for n in FILES} == {p.stem for p in NOTICES.glob("*.txt")}


# The organizer of each file at its level, with two children acting at the next level down
# (Weihai: the demo's tree, whose 市直机关工会工委 the 7/31 duty names).
ORGANIZERS = {
    "BZ": UnitLevel.CITY,
    "DL": UnitLevel.CITY,
    "QP": UnitLevel.DISTRICT,
    "XIAN": UnitLevel.DISTRICT,
}


def small_tree(conn: Connection, code: str, level: UnitLevel) -> list[str]:
    """The organizer, two children, a grassroots union under each: the grassroots codes."""
    below = UnitLevel.DISTRICT if level is UnitLevel.CITY else UnitLevel.STREET
    top = conn.execute(
        insert(unit_t)
        .values(code=code, name=code, level=level.value, parent_id=None, path=child_path("/", code))
        .returning(unit_t.c.id, unit_t.c.path)
    ).one()
    grassroots = []
    for i in (1, 2):
        mid = conn.execute(
            insert(unit_t)
            .values(
                code=f"{code}-{i}",
                name=f"{code}-{i}",
                level=below.value,
                parent_id=top.id,
                path=child_path(top.path, f"{code}-{i}"),
            )
            .returning(unit_t.c.id, unit_t.c.path)
        ).one()
        g = f"{code}-{i}-1"
        conn.execute(
            insert(unit_t).values(
                code=g,
                name=g,
                level=UnitLevel.GRASSROOTS.value,
                parent_id=mid.id,
                path=child_path(mid.path, g),
            )
        )
        grassroots.append(g)
    return grassroots


def load(engine: Engine, name: str, clock: ManualClock) -> tuple[int, list[str]]:
    spec = read_campaign_file(CAMPAIGNS / name)
    with transaction(engine) as conn:
        if spec.organizer == "WH":
            grassroots = seed_weihai_tree(conn, grassroots_per_district=1).grassroots
        else:
            grassroots = small_tree(conn, spec.organizer, ORGANIZERS[spec.organizer])
        return load_campaign(conn, spec, clock), grassroots


@pytest.mark.parametrize("name", FILES)
def test_each_campaign_file_loads(db: Engine, name: str) -> None:
    spec: CampaignFile = read_campaign_file(CAMPAIGNS / name)
    campaign_id, _ = load(db, name, ManualClock(dt.datetime(spec.year, 7, 1, 9)))
    assert campaign_id > 0


# ---- the rules, a case inside and one outside each ------------------------------------------


def new_case(
    engine: Engine,
    clock: ManualClock,
    campaign_id: int,
    unit: str,
    *,
    year: int,
    application_type: str | None = None,
    form: dict[str, Any] | None = None,
    **worker_changes: Any,
) -> int:
    body: dict[str, Any] = {
        "campaign": campaign_id,
        "unit": unit,
        "worker": worker(**{"archived_on": f"{year}-03-01", **worker_changes}),
        "student": student(enrollment_year=year),
    }
    if application_type is not None:
        body.update(application_type=application_type, form=form or {})
    with transaction(engine) as conn:
        spec = CaseCreate.model_validate(body)
        return create_case(conn, spec, actor=actor(conn, unit, "clerk"), clock=clock)


def submit(engine: Engine, clock: ManualClock, case_id: int, unit: str) -> str:
    """The case's state after submit, or the refusal's reasons' messages joined."""
    try:
        with transaction(engine) as conn:
            return apply_event(
                conn,
                case_id=case_id,
                event="submit",
                expected_version=case_row(engine, case_id).version,
                actor=actor(conn, unit, "clerk"),
                clock=clock,
            ).state
    except GuardFailed as refused:
        return " | ".join(f"{r.code}: {r.message}" for r in refused.reasons)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "attachments")


def attach_all(
    engine: Engine, store: FileStore, clock: ManualClock, case_id: int, unit: str, *kinds: str
) -> None:
    for kind in kinds:
        with transaction(engine) as conn:
            attach(
                conn,
                store,
                case_id=case_id,
                kind=kind,
                filename=f"{kind}.pdf",
                content=PDF + kind.encode(),
                actor=actor(conn, unit, "clerk"),
                clock=clock,
            )


class TestWeihai:
    """Only 建档困难职工家庭子女; 建档满1年 reckoned at 7/31, once."""

    CLOCK = dt.datetime(2024, 7, 20, 9)

    def test_archived_a_year_before_the_reference_date_re_declares(self, db: Engine) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "weihai-2024.json", clock)
        # 2023-07-25 + 12 months = 2024-07-25, before 7/31: still current on 7/20 by the
        # calendar, but the notice counts to the 7/31 submission.
        old = new_case(db, clock, campaign, units[0], year=2024, archived_on="2023-07-25")
        refused = submit(db, clock, old, units[0])
        assert refused.startswith("archive_expired")
        assert "建档满1年的困难职工需要重新申报" in refused
        assert case_row(db, old).state == "survey"  # the family re-declares

        current = new_case(db, clock, campaign, units[0], year=2024, archived_on="2023-08-01")
        assert submit(db, clock, current, units[0]) == "archive_check"

    def test_the_answer_does_not_change_as_the_season_passes(self, db: Engine) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "weihai-2024.json", clock)
        case = new_case(db, clock, campaign, units[0], year=2024, archived_on="2023-08-01")
        assert submit(db, clock, case, units[0]) == "archive_check"
        clock.set(dt.datetime(2024, 8, 22, 9))  # a year and three weeks after the archive
        with transaction(db) as conn:
            fired = apply_event(
                conn,
                case_id=case,
                event="verify",
                expected_version=case_row(db, case).version,
                actor=actor(conn, "WH", "reviewer"),
                clock=clock,
            )
        assert fired.state == "ready_for_publicity"

    def test_a_migrant_worker_outside_the_archive_is_not_aided(self, db: Engine) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "weihai-2024.json", clock)
        case = new_case(
            db,
            clock,
            campaign,
            units[0],
            year=2024,
            archive_status="none",
            archived_on=None,
            categories=["migrant_worker"],
        )
        assert submit(db, clock, case, units[0]).startswith("not_in_archive")

    def test_a_category_the_notice_does_not_have_is_refused_naming_it(
        self, db: Engine, store: FileStore
    ) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "weihai-2024.json", clock)
        with pytest.raises(ValidationFailed) as refused:
            new_case(db, clock, campaign, units[0], year=2024, categories=["single_mother"])
        (detail,) = refused.value.details
        assert detail["field"] == "worker.categories.0"
        assert detail["code"] == "unknown_category"
        assert "single_mother" in detail["message"]


class TestBozhou:
    """Six categories, five of them without the archive; (三) only 在城市上学; uploads named."""

    CLOCK = dt.datetime(2023, 7, 20, 9)
    DOCS = ("hardship_proof", "identity_card")

    def outside_archive(
        self, db: Engine, store: FileStore, *, form: dict[str, Any], category: str
    ) -> str:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "bozhou-2023.json", clock)
        case = new_case(
            db,
            clock,
            campaign,
            units[0],
            year=2023,
            application_type="new_entrant",
            form=form,
            archive_status="none",
            archived_on=None,
            categories=[category],
        )
        attach_all(db, store, clock, case, units[0], *self.DOCS)
        return submit(db, clock, case, units[0])

    def test_a_warmth_family_is_aided_without_the_archive(
        self, db: Engine, store: FileStore
    ) -> None:
        assert self.outside_archive(db, store, form={}, category="warmth") == "archive_check"

    def test_a_migrant_family_is_aided_when_the_child_studies_in_a_city(
        self, db: Engine, store: FileStore
    ) -> None:
        studies_in_city = {"studies_in_city": True}
        assert self.outside_archive(db, store, form=studies_in_city, category="migrant_worker") == (
            "archive_check"
        )

    def test_a_gig_family_whose_child_is_not_in_a_city_is_not(
        self, db: Engine, store: FileStore
    ) -> None:
        refused = self.outside_archive(
            db, store, form={"studies_in_city": False}, category="gig_worker"
        )
        assert "category_condition_unmet" in refused
        assert "在城市上学" in refused
        assert "(三)在城市上学的困难新就业形态劳动者、困难农民工家庭在校生;" in refused

    def test_the_archived_category_does_not_waive_the_archive(
        self, db: Engine, store: FileStore
    ) -> None:
        refused = self.outside_archive(db, store, form={}, category="archived")
        assert refused.startswith("not_in_archive")

    def test_submit_names_the_documents_missing(self, db: Engine, store: FileStore) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "bozhou-2023.json", clock)
        case = new_case(
            db, clock, campaign, units[0], year=2023, application_type="dream_plan", form={}
        )
        attach_all(db, store, clock, case, units[0], "hardship_proof")
        refused = submit(db, clock, case, units[0])
        assert refused.startswith("documents_missing")
        assert "职工身份证" in refused and "困难职工或农民工档案表" not in refused
        attach_all(db, store, clock, case, units[0], "identity_card")
        assert submit(db, clock, case, units[0]) == "archive_check"

    def test_a_case_names_one_of_the_campaigns_application_types(self, db: Engine) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "bozhou-2023.json", clock)
        with pytest.raises(ValidationFailed) as refused:
            new_case(db, clock, campaign, units[0], year=2023, application_type="freshman")
        (detail,) = refused.value.details
        assert (detail["field"], detail["code"]) == ("application_type", "unknown_application_type")
        assert "new_entrant" in detail["message"] and "dream_plan" in detail["message"]


class TestDalian:
    """All in the archive (在档困难劳模、困难职工和困难农民工); two forms with their materials."""

    CLOCK = dt.datetime(2011, 7, 20, 9)

    def test_a_model_worker_outside_the_archive_is_not_aided(
        self, db: Engine, store: FileStore
    ) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "dalian-2011.json", clock)
        case = new_case(
            db,
            clock,
            campaign,
            units[0],
            year=2011,
            application_type="freshman",
            archive_status="none",
            archived_on=None,
            categories=["model_worker"],
        )
        attach_all(
            db, store, clock, case, units[0], "admission_notice", "transcript", "hardship_proof"
        )
        assert submit(db, clock, case, units[0]).startswith("not_in_archive")

    def test_a_freshman_needs_the_admission_notice_and_the_score(
        self, db: Engine, store: FileStore
    ) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "dalian-2011.json", clock)
        case = new_case(
            db, clock, campaign, units[0], year=2011, application_type="freshman", form={}
        )
        attach_all(db, store, clock, case, units[0], "hardship_proof")
        refused = submit(db, clock, case, units[0])
        assert "录取通知书" in refused and "高考成绩通知单复印件" in refused
        attach_all(db, store, clock, case, units[0], "admission_notice", "transcript")
        assert submit(db, clock, case, units[0]) == "archive_check"

    def test_a_continuing_student_names_the_year_first_aided(
        self, db: Engine, store: FileStore
    ) -> None:
        clock = ManualClock(self.CLOCK)
        campaign, units = load(db, "dalian-2011.json", clock)
        case = new_case(
            db, clock, campaign, units[0], year=2011, application_type="in_school", form={}
        )
        attach_all(db, store, clock, case, units[0], "other", "transcript", "hardship_proof")
        refused = submit(db, clock, case, units[0])
        assert refused.startswith("form_incomplete") and "首次资助年度" in refused
        with pytest.raises(ValidationFailed) as wrong:
            new_case(
                db,
                clock,
                campaign,
                units[0],
                year=2011,
                application_type="in_school",
                form={"first_aided_year": "2009年"},
            )
        assert wrong.value.details[0]["code"] == "wrong_kind"


def test_the_loaded_campaign_reads_back_its_categories(db: Engine) -> None:
    clock = ManualClock(dt.datetime(2023, 7, 20, 9))
    campaign, _ = load(db, "bozhou-2023.json", clock)
    t = Campaign.__table__  # type: ignore[attr-defined]
    with db.connect() as conn:
        row = conn.execute(select(t.c.categories).where(t.c.id == campaign)).one()
    assert [c["code"] for c in row.categories] == [
        c["code"] for c in raw("bozhou-2023.json")["categories"]
    ]
