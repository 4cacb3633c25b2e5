"""The engine on both databases: a case's whole life, and every kind of refusal leaving no trace."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.counters import unit_case_count
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import (
    EventNotAllowed,
    GuardFailed,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.followup.visits import VisitIn, record_visit
from jinqiu.workflow.roles import SCHEDULER, Actor
from tests.factories import actor_of, case_in, case_row, new_case, weihai, weihai_amount_fen

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
count_t = unit_case_count
GRASSROOTS, DISTRICT, CITY = "WH-HC-001", "WH-HC", "WH"


def fire(
    engine: Engine, clock: ManualClock, case_id: int, event: str, who: Actor, **kw: object
) -> int:
    version = case_row(engine, case_id).version
    with transaction(engine) as conn:
        result = apply_event(
            conn,
            case_id=case_id,
            event=event,
            expected_version=version,
            actor=who,
            clock=clock,
            **kw,  # type: ignore[arg-type]
        )
    return result.version


def audit_count(engine: Engine, case_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(audit_t).where(audit_t.c.case_id == case_id)
            ).scalar_one()
        )


def traces(engine: Engine, case_id: int) -> dict[str, Any]:
    """Everything a transition writes: the case row (state, version, step, amounts, audit head),
    the case's audit entries, every dashboard counter, every fund row."""
    with engine.connect() as conn:
        return {
            "case": conn.execute(select(case_t).where(case_t.c.id == case_id)).one()._asdict(),
            "audit": conn.execute(
                select(audit_t.c.seq, audit_t.c.event, audit_t.c.hash)
                .where(audit_t.c.case_id == case_id)
                .order_by(audit_t.c.seq)
            ).all(),
            "counters": conn.execute(
                select(count_t).order_by(count_t.c.campaign_id, count_t.c.unit_code)
            ).all(),
            "funds": conn.execute(
                select(fund_t.c.id, fund_t.c.reserved_fen, fund_t.c.paid_fen).order_by(fund_t.c.id)
            ).all(),
        }


def drive_to_approval(engine: Engine, clock: ManualClock, case_id: int) -> None:
    fire(engine, clock, case_id, "submit", actor_of(engine, GRASSROOTS, "clerk"))
    clock.set(dt.datetime(2024, 8, 1, 10))
    fire(
        engine,
        clock,
        case_id,
        "verify",
        actor_of(engine, DISTRICT, "reviewer"),
        opinion="档案核查无误",
    )
    fire(engine, clock, case_id, "publish", SCHEDULER)  # as a publicity list fires it
    clock.set(dt.datetime(2024, 8, 9, 10))  # five working days after 8/1 is 8/8
    fire(engine, clock, case_id, "end_publicity", SCHEDULER)


class TestWholeLifecycle:
    def test_three_levels_of_approval_then_payment_and_follow_up(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        drive_to_approval(db, clock, case_id)
        assert case_row(db, case_id).state == "approval"
        for level_unit in (GRASSROOTS, DISTRICT):
            fire(
                db, clock, case_id, "approve", actor_of(db, level_unit, "approver"), opinion="同意"
            )
            row = case_row(db, case_id)
            assert (row.state, row.approved_amount_fen) == ("approval", None)
        fire(db, clock, case_id, "approve", actor_of(db, CITY, "approver"), opinion="同意资助")
        row = case_row(db, case_id)
        assert row.state == "disbursement"
        assert row.approved_amount_fen == weihai_amount_fen()  # the file's first-tier amount
        fire(db, clock, case_id, "pay", actor_of(db, CITY, "finance"))
        # The file's follow-up rule: one visit recorded, which fires the close.
        visit = VisitIn.model_validate(
            {"date": clock.now().date().isoformat(), "kind": "home", "visitor": "李干事"}
        )
        with transaction(db) as conn:
            record_visit(conn, case_id, visit, actor=actor_of(db, GRASSROOTS, "clerk"), clock=clock)
        row = case_row(db, case_id)
        # created + 8 events, the visit and the close it fired
        assert (row.state, row.version, row.audit_seq) == ("closed", 11, 11)
        with db.connect() as conn:
            fund = conn.execute(select(fund_t).where(fund_t.c.source == "government")).one()
        assert (fund.reserved_fen, fund.paid_fen) == (0, weihai_amount_fen())

    def test_return_sends_the_case_back_to_survey_with_the_reason_kept(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        fire(db, clock, case_id, "submit", actor_of(db, GRASSROOTS, "clerk"))
        fire(
            db,
            clock,
            case_id,
            "return",
            actor_of(db, DISTRICT, "reviewer"),
            opinion="缺少录取通知书",
        )
        row = case_row(db, case_id)
        assert (row.state, row.return_reason) == ("survey", "缺少录取通知书")


class TestRefusalsWriteNothing:
    """Each refusal raises its own error, and the case, its audit trail, the counters and the
    funds are exactly as before: nothing written, not even a version bump or an audit entry."""

    def test_stale_version_is_a_conflict(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        before = traces(db, case_id)
        with pytest.raises(VersionConflict), transaction(db) as conn:
            apply_event(
                conn,
                case_id=case_id,
                event="submit",
                expected_version=7,
                actor=actor_of(db, GRASSROOTS, "clerk"),
                clock=clock,
            )
        assert traces(db, case_id) == before
        assert (case_row(db, case_id).version, audit_count(db, case_id)) == (1, 1)

    def test_event_not_allowed_lists_the_allowed_events(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        before = traces(db, case_id)
        with pytest.raises(EventNotAllowed) as caught, transaction(db) as conn:
            apply_event(
                conn,
                case_id=case_id,
                event="pay",
                expected_version=1,
                actor=actor_of(db, GRASSROOTS, "clerk"),
                clock=clock,
            )
        assert caught.value.details["allowed_events"] == ["submit", "withdraw"]
        assert traces(db, case_id) == before

    def test_guard_failure_names_every_reason(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(
            db,
            clock,
            campaign,
            GRASSROOTS,
            worker_changes={"archived_on": "2023-05-01"},
            student_changes={"already_aided_by": "国家助学金"},
        )
        before = traces(db, case_id)
        with pytest.raises(GuardFailed) as caught, transaction(db) as conn:
            apply_event(
                conn,
                case_id=case_id,
                event="submit",
                expected_version=1,
                actor=actor_of(db, GRASSROOTS, "clerk"),
                clock=clock,
            )
        assert traces(db, case_id) == before
        codes = [r.code for r in caught.value.reasons]
        assert codes == ["archive_expired", "already_aided"]
        assert (case_row(db, case_id).state, audit_count(db, case_id)) == ("survey", 1)

    def test_approver_of_the_wrong_level_is_refused(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = case_in(db, clock, campaign, GRASSROOTS, CaseState.APPROVAL)
        before = traces(db, case_id)
        assert (before["case"]["state"], before["case"]["version"]) == ("approval", 5)
        with pytest.raises(PermissionDenied), transaction(db) as conn:
            apply_event(
                conn,
                case_id=case_id,
                event="approve",
                expected_version=5,
                actor=actor_of(db, CITY, "approver"),
                clock=clock,
            )
        assert traces(db, case_id) == before

    def test_return_without_a_reason_is_refused(self, db: Engine, clock: ManualClock) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        fire(db, clock, case_id, "submit", actor_of(db, GRASSROOTS, "clerk"))
        before = traces(db, case_id)
        with pytest.raises(ValidationFailed) as caught:
            fire(db, clock, case_id, "return", actor_of(db, DISTRICT, "reviewer"))
        assert caught.value.details[0]["field"] == "opinion"
        assert traces(db, case_id) == before


class TestOverrides:
    def test_manager_overrides_the_survey_window_with_a_reason_kept_in_the_audit(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(db, clock, campaign, GRASSROOTS)
        clock.set(dt.datetime(2024, 8, 5, 9))
        with pytest.raises(GuardFailed) as caught:
            fire(db, clock, case_id, "submit", actor_of(db, GRASSROOTS, "clerk"))
        assert [r.code for r in caught.value.reasons] == ["survey_closed"]
        override = {
            "override": {"guards": ["within_survey_window"], "reason": "台风停工，延期报送"}
        }
        with pytest.raises(PermissionDenied):
            fire(db, clock, case_id, "submit", actor_of(db, GRASSROOTS, "clerk"), data=override)
        fire(db, clock, case_id, "submit", actor_of(db, DISTRICT, "manager"), data=override)
        with db.connect() as conn:
            last = conn.execute(
                select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq.desc())
            ).first()
        assert last is not None
        assert last.data["override"] == {
            "guards": ["within_survey_window"],
            "reason": "台风停工，延期报送",
        }
        assert case_row(db, case_id).state == CaseState.ARCHIVE_CHECK

    def test_a_guard_that_is_not_overridable_stays_enforced(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = new_case(
            db, clock, campaign, GRASSROOTS, worker_changes={"archive_status": "none"}
        )
        override = {"override": {"guards": ["worker_is_eligible"], "reason": "特殊情况"}}
        with pytest.raises(ValidationFailed):
            fire(
                db,
                clock,
                case_id,
                CaseEvent.SUBMIT,
                actor_of(db, DISTRICT, "manager"),
                data=override,
            )
