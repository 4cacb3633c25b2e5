"""The life of an employment record (阳光就业), as data.

    registered → seeking → (interviewing) → employed | further_study | not_employed
                 seeking ← interviewing (no offer),  seeking ← not_employed (tries again)

A record follows one graduate of an aided family through the campaign's year ("一人一策、
全流程跟踪"). `employed` and `further_study` are terminal: the record's purpose is reached, and
the statistics count a record by where it ended. `not_employed` is not: the notices ask the
unions to keep helping those still without work (Dalian 附件3 items 15–16 count them), so such a
record may go back to seeking. A graduate who loses a job later is next year's record (records
are per campaign). Help offered (training, internship, referral, a 一人一策 plan …) is no
transition: it is an entry on the record's own chain (`workflow.employment.service.record_help`).

Pure: guards and effects are named here and implemented in `workflow.employment.engine`.
"""

from __future__ import annotations

from enum import StrEnum

from jinqiu.states.case_lifecycle import Permission
from jinqiu.states.machine import Kind, Machine, State, Transition


class RecordState(StrEnum):
    REGISTERED = "registered"  # 已登记
    SEEKING = "seeking"  # 求职中
    INTERVIEWING = "interviewing"  # 面试中
    EMPLOYED = "employed"  # 已就业
    FURTHER_STUDY = "further_study"  # 升学
    NOT_EMPLOYED = "not_employed"  # 暂未就业


class RecordEvent(StrEnum):
    START_SEEKING = "start_seeking"
    INTERVIEW = "interview"
    NO_OFFER = "no_offer"
    EMPLOY = "employ"
    CONTINUE_STUDY = "continue_study"
    GIVE_UP = "give_up"
    RESUME_SEEKING = "resume_seeking"


S = RecordState
E = RecordEvent
P = Permission
RecordTransition = Transition[RecordState, RecordEvent, object]
# Where a graduate may still be helped: every state but the two the record ends in.
LOOKING = (S.REGISTERED, S.SEEKING, S.INTERVIEWING)

TRANSITIONS: tuple[RecordTransition, ...] = (
    Transition(E.START_SEEKING, (S.REGISTERED,), S.SEEKING, P.RECORD_EMPLOYMENT, "开始求职"),
    Transition(
        E.INTERVIEW,
        (S.SEEKING,),
        S.INTERVIEWING,
        P.RECORD_EMPLOYMENT,
        "参加面试",
        effects=("note_destination",),
        data_keys=("employer",),
    ),
    Transition(E.NO_OFFER, (S.INTERVIEWING,), S.SEEKING, P.RECORD_EMPLOYMENT, "未录用，继续求职"),
    Transition(
        E.EMPLOY,
        LOOKING,
        S.EMPLOYED,
        P.RECORD_EMPLOYMENT,
        "实现就业",
        guards=("destination_named",),
        effects=("fix_destination",),
        data_keys=("employer",),
    ),
    Transition(
        E.CONTINUE_STUDY,
        LOOKING,
        S.FURTHER_STUDY,
        P.RECORD_EMPLOYMENT,
        "升学",
        guards=("destination_named",),
        effects=("fix_destination",),
        data_keys=("school",),
    ),
    Transition(
        E.GIVE_UP,
        (S.SEEKING, S.INTERVIEWING),
        S.NOT_EMPLOYED,
        P.RECORD_EMPLOYMENT,
        "暂未就业",
        opinion_required=True,
    ),
    Transition(E.RESUME_SEEKING, (S.NOT_EMPLOYED,), S.SEEKING, P.RECORD_EMPLOYMENT, "重新求职"),
)

MACHINE: Machine[RecordState, RecordEvent, object] = Machine(
    name="employment_record",
    label="阳光就业记录状态机",
    states=(
        State(S.REGISTERED, "已登记"),
        State(S.SEEKING, "求职中"),
        State(S.INTERVIEWING, "面试中"),
        State(S.EMPLOYED, "已就业", Kind.TERMINAL),
        State(S.FURTHER_STUDY, "升学", Kind.TERMINAL),
        State(S.NOT_EMPLOYED, "暂未就业"),
    ),
    events=RecordEvent,
    transitions=TRANSITIONS,
    initial=S.REGISTERED,
)
