"""The case lifecycle declared in states/case_lifecycle.py: survey → archive check → publicity →
approval (one step per level) → disbursement → follow-up → closed, plus return (补正), reject
and withdraw. Pure: no database (tests/security/test_machine_declaration.py holds the checks
against the database and the consumers)."""

from __future__ import annotations

import re
from collections import Counter, deque
from types import SimpleNamespace
from typing import Any

import pytest

from jinqiu.states import (
    MACHINE,
    TERMINAL_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseState,
    Kind,
    events_from,
    select_transition,
    to_mermaid,
)
from jinqiu.states.case_lifecycle import history_to

S, E = CaseState, CaseEvent
REVIEWABLE = {S.ARCHIVE_CHECK, S.READY_FOR_PUBLICITY, S.PUBLICITY, S.APPROVAL}


def sources_of(event: CaseEvent) -> set[CaseState]:
    return {s for t in TRANSITIONS if t.event is event for s in t.sources}


def route(t: Any) -> str | None:
    return None if t is None else t.route_name


class TestTheLibraryHoldsTheDeclaration:
    def test_the_machine_knows_exactly_the_lifecycle_states(self) -> None:
        assert set(MACHINE.library.states) == {s.value for s in CaseState}

    def test_a_new_machine_starts_in_survey(self) -> None:
        assert MACHINE.library.initial == S.SURVEY.value

    def test_the_machine_has_exactly_the_lifecycle_events_and_no_implicit_to_state_ones(
        self,
    ) -> None:
        assert set(MACHINE.library.events) == {e.value for e in CaseEvent}
        assert not any(name.startswith("to_") for name in MACHINE.library.events)

    def test_each_declared_transition_is_in_the_library_once_per_source_and_nothing_else(
        self,
    ) -> None:
        """Every library transition carries the declaration it was built from, between the
        same states; together they are the declared transitions, each once per source."""
        held: Counter[tuple[int, str]] = Counter()
        for name, event in MACHINE.library.events.items():
            for source, candidates in event.transitions.items():
                for candidate in candidates:
                    declared = candidate.declaration
                    assert (declared.event, candidate.source, candidate.dest) == (
                        name,
                        source,
                        declared.dest,
                    )
                    assert source in declared.sources
                    held[(id(declared), source)] += 1
        assert held == Counter((id(t), s.value) for t in TRANSITIONS for s in t.sources)

    def test_each_route_is_a_condition_the_library_evaluates(self) -> None:
        for candidate in MACHINE.library.events[E.APPROVE.value].transitions[S.APPROVAL.value]:
            assert [c.func for c in candidate.conditions] == [candidate.declaration.route]

    def test_selecting_for_any_case_attaches_no_model_and_adds_no_event(self) -> None:
        """Never one model per case: the engine asks the shared machine for every case and
        every approval chain, and the library machine stays as built."""
        from jinqiu.workflow.cases.engine import allowed_events, transition_for
        from jinqiu.workflow.cases.facts import CaseFacts
        from jinqiu.workflow.roles import SCHEDULER, Actor

        clerk = Actor("c", "WH-HC-001", "/WH/WH-HC/WH-HC-001/", "grassroots", ("clerk",))
        rules: Any = SimpleNamespace(approval_levels=("grassroots", "district", "city"))
        for state in CaseState:
            for chain in ((0, 1, 2), (0, 2), (2,)):
                for step in chain:
                    case = CaseFacts(
                        id=1,
                        state=state,
                        version=1,
                        approval_step=step,
                        objection_open=False,
                        publicity_ends_on=None,
                        approved_amount_fen=None,
                        fund_source_id=None,
                        payment_failures=0,
                        unit_path="/WH/",
                        approval_chain=chain,
                    )
                    for actor in (clerk, SCHEDULER):
                        allowed_events(actor, case, rules)
                    for event in CaseEvent:
                        transition_for(case, event, rules)
        assert MACHINE.library.models == []
        assert set(MACHINE.library.events) == {e.value for e in CaseEvent}


class TestReachability:
    def test_every_state_is_reachable_from_survey(self) -> None:
        seen = {S.SURVEY}
        queue = deque([S.SURVEY])
        while queue:
            state = queue.popleft()
            for event in events_from(state):
                for t in MACHINE.candidates(state, event):
                    if t.dest not in seen:
                        seen.add(t.dest)
                        queue.append(t.dest)
        assert seen == set(CaseState)

    def test_every_open_state_can_still_end(self) -> None:
        reverse: dict[CaseState, set[CaseState]] = {s: set() for s in CaseState}
        for t in TRANSITIONS:
            for source in t.sources:
                reverse[t.dest].add(source)
        can_end = set(TERMINAL_STATES)
        queue = deque(TERMINAL_STATES)
        while queue:
            for source in reverse[queue.popleft()]:
                if source not in can_end:
                    can_end.add(source)
                    queue.append(source)
        assert can_end == set(CaseState)


class TestTerminalStates:
    @pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
    def test_a_closed_rejected_or_withdrawn_case_allows_no_event(self, state: CaseState) -> None:
        assert events_from(state) == []
        for event in CaseEvent:
            assert select_transition(state, event, approval_step=0, approval_levels=1) is None

    @pytest.mark.parametrize("state", MACHINE.open_states)
    def test_every_open_state_allows_some_event(self, state: CaseState) -> None:
        assert events_from(state) != []

    def test_a_case_ends_aided_exactly_when_every_way_to_its_end_passes_a_payment(self) -> None:
        """`closed` counts as the student's one application, `rejected` and `withdrawn` free
        the student: the kind each end is declared with must agree with the money."""
        unpaid = {MACHINE.initial}  # reachable without a payment on the way
        queue = deque(unpaid)
        while queue:
            at = queue.popleft()
            for t in TRANSITIONS:
                if at in t.sources and "record_payment" not in t.effects and t.dest not in unpaid:
                    unpaid.add(t.dest)
                    queue.append(t.dest)
        for state in MACHINE.states:
            if state.kind is Kind.ENDED_WITHOUT_AID:
                assert state.name in unpaid, state.name
            elif state.kind is Kind.TERMINAL:
                assert state.name not in unpaid, state.name
        assert MACHINE.ended_without_aid and MACHINE.terminal_states - MACHINE.ended_without_aid

    def test_a_new_case_may_only_be_submitted_or_withdrawn(self) -> None:
        assert events_from(S.SURVEY) == [E.SUBMIT, E.WITHDRAW]


class TestTheMainPath:
    @pytest.mark.parametrize(
        ("state", "event", "dest"),
        [
            (S.SURVEY, E.SUBMIT, S.ARCHIVE_CHECK),
            (S.ARCHIVE_CHECK, E.VERIFY, S.READY_FOR_PUBLICITY),
            (S.READY_FOR_PUBLICITY, E.PUBLISH, S.PUBLICITY),
            (S.PUBLICITY, E.END_PUBLICITY, S.APPROVAL),
            (S.DISBURSEMENT, E.PAY, S.FOLLOW_UP),
            (S.FOLLOW_UP, E.CLOSE, S.CLOSED),
        ],
    )
    def test_each_step_leads_to_the_next_phase(
        self, state: CaseState, event: CaseEvent, dest: CaseState
    ) -> None:
        t = select_transition(state, event, approval_step=0, approval_levels=3)
        assert t is not None
        assert t.dest is dest

    def test_submitting_checks_identity_eligibility_double_aid_and_the_survey_window(
        self,
    ) -> None:
        t = select_transition(S.SURVEY, E.SUBMIT, approval_step=0, approval_levels=3)
        assert t is not None
        assert set(t.guards) == {
            "identity_numbers_valid",
            "worker_is_eligible",
            "not_already_aided",
            "within_survey_window",
            "application_complete",
        }

    def test_a_manager_may_override_only_double_aid_and_the_survey_window(self) -> None:
        t = select_transition(S.SURVEY, E.SUBMIT, approval_step=0, approval_levels=3)
        assert t is not None
        assert set(t.overridable) == {"not_already_aided", "within_survey_window"}

    def test_only_guards_a_transition_runs_can_be_overridden(self) -> None:
        for t in TRANSITIONS:
            assert set(t.overridable) <= set(t.guards), t.event

    def test_a_verified_case_waits_for_a_list_which_starts_its_publicity(self) -> None:
        t = select_transition(S.ARCHIVE_CHECK, E.VERIFY, approval_step=0, approval_levels=3)
        assert t is not None and t.dest is S.READY_FOR_PUBLICITY and not t.effects
        published = select_transition(
            S.READY_FOR_PUBLICITY, E.PUBLISH, approval_step=0, approval_levels=3
        )
        assert published is not None and "start_publicity" in published.effects

    def test_only_the_system_publishes_unlists_and_ends_a_cases_publicity(self) -> None:
        """A publicity list fires them on all its cases; nobody on a single case."""
        for t in TRANSITIONS:
            if t.event in (E.PUBLISH, E.UNLIST, E.END_PUBLICITY):
                assert t.permission == "schedule.run", t.event

    def test_publicity_ends_only_when_over_and_free_of_objections(self) -> None:
        t = select_transition(S.PUBLICITY, E.END_PUBLICITY, approval_step=0, approval_levels=3)
        assert t is not None
        assert set(t.guards) == {"no_open_objection", "publicity_period_over"}

    def test_an_objection_keeps_the_case_in_publicity_and_must_say_why(self) -> None:
        for event in (E.OBJECT, E.RESOLVE_OBJECTION):
            t = select_transition(S.PUBLICITY, event, approval_step=0, approval_levels=3)
            assert t is not None
            assert t.dest is S.PUBLICITY
            assert t.opinion_required

    def test_a_failed_payment_keeps_the_case_in_disbursement(self) -> None:
        t = select_transition(S.DISBURSEMENT, E.PAYMENT_FAILED, approval_step=0, approval_levels=1)
        assert t is not None
        assert t.dest is S.DISBURSEMENT
        assert t.opinion_required

    def test_a_case_cannot_be_paid_before_it_is_approved(self) -> None:
        for state in (S.SURVEY, S.ARCHIVE_CHECK, S.PUBLICITY, S.APPROVAL):
            assert select_transition(state, E.PAY, approval_step=0, approval_levels=1) is None

    def test_every_implemented_guard_and_effect_is_named_by_some_transition(self) -> None:
        """The registries refuse at import a name the declaration uses but nothing implements;
        the other way round, an implemented rule no transition names is one a transition lost."""
        from jinqiu.workflow.cases.effects import EFFECTS
        from jinqiu.workflow.cases.guards import GUARDS

        assert {g for t in TRANSITIONS for g in t.guards} == GUARDS.keys()
        assert {e for t in TRANSITIONS for e in t.effects} == EFFECTS.keys()


class TestWhatEachTransitionTakesAndOffers:
    def test_the_events_take_only_their_declared_data(self) -> None:
        taken = {e: MACHINE.data_keys(e) for e in E}
        assert {e: keys for e, keys in taken.items() if keys} == {
            E.APPROVE: {"fund_source", "amount"},
            E.PAY: {"payment_reference", "payment_batch"},
            E.PAYMENT_FAILED: {"payment_batch"},
            E.PUBLISH: {"publicity_list", "starts_on", "ends_on"},  # the list's period
            E.UNLIST: {"publicity_list"},
            E.OBJECT: {"objection"},  # the record on the list
            E.RESOLVE_OBJECTION: {"objection", "outcome"},
        }

    def test_in_approval_only_withdrawing_is_not_bound_to_the_level(self) -> None:
        free = {
            t.event
            for e in events_from(S.APPROVAL)
            for t in MACHINE.candidates(S.APPROVAL, e)
            if not MACHINE.level_bound(t, S.APPROVAL)
        }
        assert free == {E.WITHDRAW}
        assert not any(
            MACHINE.level_bound(t, s) for t in TRANSITIONS for s in t.sources if s is not S.APPROVAL
        )

    def test_decisions_that_need_their_own_reason_are_never_done_in_bulk(self) -> None:
        for t in TRANSITIONS:
            if t.event in (E.REJECT, E.WITHDRAW, E.OBJECT, E.RESOLVE_OBJECTION, E.PAYMENT_FAILED):
                assert not t.bulk, t.event
        assert MACHINE.bulk_events(S.APPROVAL) == [E.RETURN, E.APPROVE]

    def test_returning_rejecting_and_a_failed_payment_tell_the_applicant_union(self) -> None:
        notifying = {t.event for t in TRANSITIONS if t.notifies}
        assert notifying == {E.RETURN, E.REJECT, E.PAYMENT_FAILED}
        names = [n for t in TRANSITIONS for n in t.notifies]
        assert all(re.fullmatch(r"[a-z][a-z_]*", n) for n in names) and len(set(names)) == len(
            names
        )

    def test_a_case_in_each_state_has_come_the_shortest_way(self) -> None:
        assert [t.event for t in history_to(S.CLOSED, levels=3)] == [
            E.SUBMIT,
            E.VERIFY,
            E.PUBLISH,
            E.END_PUBLICITY,
            E.APPROVE,
            E.APPROVE,
            E.APPROVE,
            E.PAY,
            E.CLOSE,
        ]
        assert [t.event for t in history_to(S.REJECTED, levels=1)] == [E.SUBMIT, E.REJECT]
        assert [t.event for t in history_to(S.APPROVAL, levels=3, approved=2)][-2:] == [
            E.APPROVE,
            E.APPROVE,
        ]


class TestApprovalLevels:
    """Dalian 2011: enterprise/street union → district/industry union → city union."""

    def test_with_three_levels_the_first_approval_stays_in_approval(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=0, approval_levels=3)
        assert t is not None
        assert (t.dest, route(t)) == (S.APPROVAL, "more_approval_levels")

    def test_with_three_levels_the_second_approval_stays_in_approval(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=1, approval_levels=3)
        assert t is not None
        assert (t.dest, route(t)) == (S.APPROVAL, "more_approval_levels")

    def test_with_three_levels_the_third_approval_goes_to_disbursement(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=2, approval_levels=3)
        assert t is not None
        assert (t.dest, route(t)) == (S.DISBURSEMENT, "last_approval_level")

    def test_with_one_level_the_first_approval_goes_to_disbursement(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=0, approval_levels=1)
        assert t is not None
        assert t.dest is S.DISBURSEMENT

    def test_every_approval_advances_the_level(self) -> None:
        for step in range(3):
            t = select_transition(S.APPROVAL, E.APPROVE, approval_step=step, approval_levels=3)
            assert t is not None
            assert "advance_approval_level" in t.effects

    def test_only_the_last_approval_fixes_the_amount_and_reserves_the_aid(self) -> None:
        last = select_transition(S.APPROVAL, E.APPROVE, approval_step=2, approval_levels=3)
        middle = select_transition(S.APPROVAL, E.APPROVE, approval_step=1, approval_levels=3)
        assert last is not None and middle is not None
        assert "aid_amount_decided" in last.guards and "reserve_aid" in last.effects
        assert "amount_only_at_last_level" in middle.guards
        assert "aid_rule_applies" not in middle.guards and "reserve_aid" not in middle.effects

    def test_approve_is_not_an_event_outside_approval(self) -> None:
        for state in CaseState:
            if state is not S.APPROVAL:
                assert (
                    select_transition(state, E.APPROVE, approval_step=0, approval_levels=1) is None
                )


class TestReturnRejectWithdraw:
    def test_return_sends_a_reviewed_case_back_to_survey_with_a_reason(self) -> None:
        assert sources_of(E.RETURN) == REVIEWABLE
        for t in (t for t in TRANSITIONS if t.event is E.RETURN):
            assert t.dest is S.SURVEY
            assert t.opinion_required
            assert "keep_return_reason" in t.effects

    def test_a_case_in_survey_cannot_be_returned(self) -> None:
        assert select_transition(S.SURVEY, E.RETURN, approval_step=0, approval_levels=1) is None

    def test_reject_ends_a_reviewed_case_and_must_say_why(self) -> None:
        assert sources_of(E.REJECT) == REVIEWABLE
        for t in (t for t in TRANSITIONS if t.event is E.REJECT):
            assert t.dest is S.REJECTED
            assert t.opinion_required

    def test_an_applicant_may_withdraw_until_the_case_is_approved(self) -> None:
        assert sources_of(E.WITHDRAW) == {S.SURVEY} | REVIEWABLE
        for t in (t for t in TRANSITIONS if t.event is E.WITHDRAW):
            assert t.dest is S.WITHDRAWN

    @pytest.mark.parametrize("event", [E.RETURN, E.REJECT, E.WITHDRAW])
    @pytest.mark.parametrize("state", [S.DISBURSEMENT, S.FOLLOW_UP])
    def test_an_approved_case_can_no_longer_be_returned_rejected_or_withdrawn(
        self, state: CaseState, event: CaseEvent
    ) -> None:
        assert select_transition(state, event, approval_step=0, approval_levels=1) is None


class TestMermaidDiagram:
    EDGE = re.compile(r"^  (\w+) --> (\w+): (.+)$")

    def drawn(self) -> set[tuple[str, str, str]]:
        return {
            (m[1], m[2], label.split()[0])
            for line in to_mermaid().splitlines()
            if (m := self.EDGE.match(line))
            for label in m[3].split(" | ")
        }

    def test_the_diagram_draws_every_transition_and_nothing_else(self) -> None:
        declared = {(s.value, t.dest.value, t.event.value) for t in TRANSITIONS for s in t.sources}
        assert self.drawn() == declared

    def test_the_diagram_starts_in_survey_and_marks_each_end_by_its_kind(self) -> None:
        lines = to_mermaid().splitlines()
        assert "stateDiagram-v2" in lines
        assert "  [*] --> survey" in lines
        for state in MACHINE.states:
            assert f'  state "{state.label}" as {state.name.value}' in lines
        for state in TERMINAL_STATES:
            kind = MACHINE.state(state).kind.value
            assert f"  Class {state.value} s_{kind}" in lines

    def test_the_diagram_labels_approval_routes_guards_and_effects(self) -> None:
        text = to_mermaid()
        assert (
            "approval --> approval: approve 审批通过 / amount_only_at_last_level"
            " → advance_approval_level [more_approval_levels]" in text
        )
        assert (
            "approval --> disbursement: approve 审批通过 / aid_amount_decided, donor_intent_matches → "
            in text
        )
        assert "reserve_aid [last_approval_level]" in text
        assert "archive_check --> ready_for_publicity: verify 核查通过 / " in text
        assert "→ start_publicity" in text
