"""The lifecycle table (states/case_lifecycle.py): survey → archive check → publicity →
approval (one step per level) → disbursement → follow-up → closed, plus return (补正),
reject and withdraw. Pure: no database."""

from __future__ import annotations

import re
from collections import deque

import pytest
from transitions import Machine

import jinqiu.states
from jinqiu.states import (
    ENDED_WITHOUT_AID,
    MACHINE,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseState,
    Route,
    events_from,
    select_transition,
    to_mermaid,
)
from jinqiu.states.case_lifecycle import TABLE, build_machine

S, E = CaseState, CaseEvent
REVIEWABLE = {S.ARCHIVE_CHECK, S.PUBLICITY, S.APPROVAL}


def sources_of(event: CaseEvent) -> set[CaseState]:
    return {s for t in TRANSITIONS if t.event is event for s in t.sources}


class TestTheTableCompilesIntoTheMachine:
    def test_the_machine_knows_exactly_the_lifecycle_states(self) -> None:
        assert set(MACHINE.states) == {s.value for s in CaseState}

    def test_a_new_machine_starts_in_survey(self) -> None:
        assert MACHINE.initial == S.SURVEY.value

    def test_the_machine_has_exactly_the_lifecycle_events_and_no_implicit_to_state_ones(
        self,
    ) -> None:
        assert set(MACHINE.events) == {e.value for e in CaseEvent}
        assert not any(name.startswith("to_") for name in MACHINE.events)

    def test_every_declared_transition_is_in_the_compiled_table(self) -> None:
        for t in TRANSITIONS:
            for source in t.sources:
                assert t in TABLE[(source, t.event)], (source, t.event)

    def test_the_compiled_table_holds_nothing_but_the_declared_transitions(self) -> None:
        compiled = sum(len(candidates) for candidates in TABLE.values())
        assert compiled == sum(len(t.sources) for t in TRANSITIONS)

    def test_a_fresh_build_yields_the_same_transitions(self) -> None:
        rebuilt = build_machine()
        assert set(rebuilt.events) == set(MACHINE.events)
        for name, event in MACHINE.events.items():
            got = {(s, c.dest) for s, cs in rebuilt.events[name].transitions.items() for c in cs}
            want = {(s, c.dest) for s, cs in event.transitions.items() for c in cs}
            assert got == want, name


class TestTheMachineIsSharedNotPerCase:
    def test_the_machine_is_one_shared_object(self) -> None:
        assert isinstance(MACHINE, Machine)
        assert jinqiu.states.MACHINE is jinqiu.states.case_lifecycle.MACHINE

    def test_no_case_is_attached_to_the_machine_as_a_model(self) -> None:
        import jinqiu.workflow.cases.engine  # noqa: F401  (the engine must not attach models either)

        for state in CaseState:
            for event in events_from(state):
                select_transition(state, event, approval_step=0, approval_levels=3)
        assert MACHINE.models == []


class TestReachability:
    def test_every_state_is_reachable_from_survey(self) -> None:
        seen = {S.SURVEY}
        queue = deque([S.SURVEY])
        while queue:
            state = queue.popleft()
            for event in events_from(state):
                for t in TABLE[(state, event)]:
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

    @pytest.mark.parametrize("state", OPEN_STATES)
    def test_every_open_state_allows_some_event(self, state: CaseState) -> None:
        assert events_from(state) != []

    def test_terminal_and_open_states_partition_the_lifecycle(self) -> None:
        assert set(OPEN_STATES) | TERMINAL_STATES == set(CaseState)
        assert not set(OPEN_STATES) & TERMINAL_STATES

    def test_only_rejected_and_withdrawn_cases_ended_without_aid(self) -> None:
        assert set(ENDED_WITHOUT_AID) == {S.REJECTED, S.WITHDRAWN}
        assert S.CLOSED not in ENDED_WITHOUT_AID

    def test_a_new_case_may_only_be_submitted_or_withdrawn(self) -> None:
        assert events_from(S.SURVEY) == [E.SUBMIT, E.WITHDRAW]


class TestTheMainPath:
    @pytest.mark.parametrize(
        ("state", "event", "dest"),
        [
            (S.SURVEY, E.SUBMIT, S.ARCHIVE_CHECK),
            (S.ARCHIVE_CHECK, E.VERIFY, S.PUBLICITY),
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
        }

    def test_a_manager_may_override_only_double_aid_and_the_survey_window(self) -> None:
        t = select_transition(S.SURVEY, E.SUBMIT, approval_step=0, approval_levels=3)
        assert t is not None
        assert set(t.overridable) == {"not_already_aided", "within_survey_window"}

    def test_only_guards_a_transition_runs_can_be_overridden(self) -> None:
        for t in TRANSITIONS:
            assert set(t.overridable) <= set(t.guards), t.event

    def test_verifying_starts_the_publicity(self) -> None:
        t = select_transition(S.ARCHIVE_CHECK, E.VERIFY, approval_step=0, approval_levels=3)
        assert t is not None
        assert "start_publicity" in t.effects

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

    def test_guards_and_effects_named_in_the_table_are_implemented(self) -> None:
        from jinqiu.workflow.cases.effects import EFFECTS
        from jinqiu.workflow.cases.guards import GUARDS

        for t in TRANSITIONS:
            assert set(t.guards) <= GUARDS.keys(), t.event
            assert set(t.effects) <= EFFECTS.keys(), t.event


class TestApprovalLevels:
    """Dalian 2011: enterprise/street union → district/industry union → city union."""

    def test_with_three_levels_the_first_approval_stays_in_approval(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=0, approval_levels=3)
        assert t is not None
        assert (t.dest, t.route) == (S.APPROVAL, Route.MORE_APPROVAL_LEVELS)

    def test_with_three_levels_the_second_approval_stays_in_approval(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=1, approval_levels=3)
        assert t is not None
        assert (t.dest, t.route) == (S.APPROVAL, Route.MORE_APPROVAL_LEVELS)

    def test_with_three_levels_the_third_approval_goes_to_disbursement(self) -> None:
        t = select_transition(S.APPROVAL, E.APPROVE, approval_step=2, approval_levels=3)
        assert t is not None
        assert (t.dest, t.route) == (S.DISBURSEMENT, Route.LAST_APPROVAL_LEVEL)

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
        assert "aid_rule_applies" in last.guards and "reserve_aid" in last.effects
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
    EDGE = re.compile(r"^    (\w+) --> (\w+): (\w+)")

    def test_the_diagram_draws_every_transition_and_nothing_else(self) -> None:
        drawn = {
            (m[1], m[2], m[3]) for line in to_mermaid().splitlines() if (m := self.EDGE.match(line))
        }
        declared = {(s.value, t.dest.value, t.event.value) for t in TRANSITIONS for s in t.sources}
        assert drawn == declared

    def test_the_diagram_starts_in_survey_and_ends_in_each_terminal_state(self) -> None:
        lines = to_mermaid().splitlines()
        assert lines[0] == "stateDiagram-v2"
        assert "    [*] --> survey" in lines
        for state in TERMINAL_STATES:
            assert f"    {state.value} --> [*]" in lines

    def test_the_diagram_labels_approval_routes_guards_and_effects(self) -> None:
        text = to_mermaid()
        assert "approval --> approval: approve [more_approval_levels]" in text
        assert "approval --> disbursement: approve [last_approval_level] / aid_rule_applies" in text
        assert "archive_check --> publicity: verify / " in text
        assert "→ start_publicity" in text
