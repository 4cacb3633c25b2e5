"""A machine declared inside the test — three states, no module changed — drawn as Mermaid and
SVG, answering every query the service's consumers ask. And declarations that cannot be right
are refused when the machine is built, naming what is wrong."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

import pytest

from jinqiu.states import Kind, Machine, MachineError, State, Transition
from jinqiu.states.diagram import to_svg


class Slip(StrEnum):  # a reimbursement slip
    DRAFT = "draft"
    SIGNING = "signing"
    PAID = "paid"


class Do(StrEnum):
    SEND = "send"
    SIGN = "sign"
    RECALL = "recall"


@dataclass(frozen=True)
class Signatures:
    done: int
    needed: int


calls: list[Signatures] = []


def more_to_sign(s: Signatures) -> bool:
    calls.append(s)
    return s.done + 1 < s.needed


def last_signature(s: Signatures) -> bool:
    calls.append(s)
    return s.done + 1 >= s.needed


STATES = (
    State(Slip.DRAFT, "草稿"),
    State(Slip.SIGNING, "会签", levels=True),
    State(Slip.PAID, "已付", Kind.TERMINAL),
)
SEND = Transition(
    Do.SEND,
    (Slip.DRAFT,),
    Slip.SIGNING,
    "slip.send",
    "送签",
    bulk=True,
    data_keys=("note",),
    notifies=("slip_sent",),
)
SIGN_MORE = Transition(
    Do.SIGN, (Slip.SIGNING,), Slip.SIGNING, "slip.sign", "签字", route=more_to_sign, bulk=True
)
SIGN_LAST = Transition(
    Do.SIGN,
    (Slip.SIGNING,),
    Slip.PAID,
    "slip.sign",
    "签字",
    route=last_signature,
    guards=("budget_left",),
    effects=("pay_out",),
    bulk=True,
)
RECALL = Transition(
    Do.RECALL,
    (Slip.SIGNING,),
    Slip.DRAFT,
    "slip.send",
    "撤回重填",
    any_level=True,
    opinion_required=True,
)


def slip_machine(**changes: object) -> Machine[Slip, Do, Signatures]:
    spec: dict[str, object] = {
        "name": "slip",
        "label": "报销单",
        "states": STATES,
        "events": Do,
        "transitions": (SEND, SIGN_MORE, SIGN_LAST, RECALL),
        "initial": Slip.DRAFT,
    }
    spec.update(changes)
    return Machine(**spec)  # type: ignore[arg-type]


@pytest.fixture
def slip() -> Machine[Slip, Do, Signatures]:
    return slip_machine()


class TestDrawn:
    def test_mermaid_is_drawn_by_the_library_with_every_transition_labelled(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        text = slip.to_mermaid()
        assert text.startswith("---\n报销单\n---\nstateDiagram-v2\n")
        edges = {
            (m[1], m[2], label.split()[0])
            for m in re.finditer(r"^\s+(\w+) --> (\w+): (.+)$", text, re.MULTILINE)
            for label in m[3].split(" | ")
        }
        assert edges == {
            ("draft", "signing", "send"),
            ("signing", "signing", "sign"),
            ("signing", "paid", "sign"),
            ("signing", "draft", "recall"),
        }
        assert "signing --> paid: sign 签字 / budget_left → pay_out [last_signature]" in text
        assert "signing --> signing: sign 签字 [more_to_sign]" in text
        assert '  state "会签" as signing' in text
        assert "  Class paid s_terminal" in text
        assert "  [*] --> draft" in text

    def test_the_svg_has_a_box_per_state_laid_out_by_rank(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        svg = ET.fromstring(to_svg(slip))
        ns = {"svg": "http://www.w3.org/2000/svg"}
        boxes = {g.get("data-state"): g for g in svg.iterfind(".//svg:g[@class='state']", ns)}
        assert set(boxes) == {"draft", "signing", "paid"}
        x = {name: float(g.find("svg:rect", ns).get("x")) for name, g in boxes.items()}  # type: ignore[union-attr, arg-type]
        assert x["draft"] < x["signing"] < x["paid"]
        labels = {name: [t.text for t in g.iterfind("svg:text", ns)] for name, g in boxes.items()}
        assert labels["signing"] == ["会签", "signing"]
        assert svg.get("aria-label") == "报销单"


class TestQueries:
    def test_states_labels_and_kinds(self, slip: Machine[Slip, Do, Signatures]) -> None:
        assert slip.state_names == (Slip.DRAFT, Slip.SIGNING, Slip.PAID)
        assert dict(slip.state_labels) == {"draft": "草稿", "signing": "会签", "paid": "已付"}
        assert dict(slip.event_labels) == {"send": "送签", "sign": "签字", "recall": "撤回重填"}
        assert slip.open_states == (Slip.DRAFT, Slip.SIGNING)
        assert slip.terminal_states == {Slip.PAID}
        assert slip.ended_without_aid == frozenset()
        assert slip.level_states == (Slip.SIGNING,)
        assert dict(slip.ranks) == {"draft": 0, "signing": 1, "paid": 2}

    def test_events_from_a_state_in_the_declared_event_order(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        assert slip.events_from(Slip.DRAFT) == [Do.SEND]
        assert slip.events_from(Slip.SIGNING) == [Do.SIGN, Do.RECALL]
        assert slip.events_from(Slip.PAID) == []

    def test_the_route_is_chosen_by_the_declared_conditions_given_the_facts(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        calls.clear()
        assert slip.select(Slip.SIGNING, Do.SIGN, Signatures(0, 3)) is SIGN_MORE
        assert slip.select(Slip.SIGNING, Do.SIGN, Signatures(2, 3)) is SIGN_LAST
        assert Signatures(2, 3) in calls  # the library called the declared condition
        assert slip.select(Slip.DRAFT, Do.SIGN, Signatures(0, 1)) is None
        assert slip.select(Slip.PAID, "nonsense", Signatures(0, 1)) is None
        assert slip.candidates(Slip.SIGNING, Do.SIGN) == (SIGN_MORE, SIGN_LAST)

    def test_what_the_engine_pages_and_queues_ask(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        assert slip.data_keys(Do.SEND) == {"note"}
        assert slip.data_keys(Do.SIGN) == frozenset()
        assert slip.level_bound(SIGN_LAST, Slip.SIGNING)
        assert not slip.level_bound(RECALL, Slip.SIGNING)  # any_level
        assert not slip.level_bound(SEND, Slip.DRAFT)  # no levels there
        assert slip.forward(SIGN_MORE, Slip.SIGNING) and not slip.forward(RECALL, Slip.SIGNING)
        assert slip.forward_events == {Do.SEND, Do.SIGN}
        assert slip.work(Slip.SIGNING) == (SIGN_MORE, SIGN_LAST)
        assert dict(slip.permissions_by_state) == {
            "draft": {"slip.send"},
            "signing": {"slip.sign"},
            "paid": frozenset(),
        }
        assert slip.waiting_for({"slip.sign"}, at_level=True) == (Slip.SIGNING,)
        assert slip.waiting_for({"slip.sign"}, at_level=False) == ()
        assert slip.waiting_for({"slip.send"}, at_level=False) == (Slip.DRAFT,)
        assert dict(slip.bulk_events_by_state) == {"draft": (Do.SEND,), "signing": (Do.SIGN,)}
        assert slip.path_to(Slip.PAID) == [SEND, SIGN_LAST]
        assert SEND.notifies == ("slip_sent",)

    def test_the_library_machine_has_no_model_and_no_implicit_events(
        self, slip: Machine[Slip, Do, Signatures]
    ) -> None:
        slip.select(Slip.SIGNING, Do.SIGN, Signatures(0, 2))
        slip.events_from(Slip.SIGNING)
        assert slip.library.models == []
        assert set(slip.library.events) == {"send", "sign", "recall"}


class TestWrongDeclarationsAreRefused:
    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"states": STATES[:2]}, "every Slip needs a declared State"),
            ({"initial": Slip.PAID}, "the initial state must be open"),
            ({"transitions": (SEND, SIGN_MORE, SIGN_LAST)}, "event 'recall' has no transition"),
            (
                {
                    "transitions": (
                        SEND,
                        SIGN_MORE,
                        SIGN_LAST,
                        RECALL,
                        Transition(Do.RECALL, (Slip.PAID,), Slip.DRAFT, "x", "撤回重填"),
                    )
                },
                "terminal state 'paid' has a transition out",
            ),
            (
                {
                    "transitions": (
                        SEND,
                        RECALL,
                        Transition(Do.SIGN, (Slip.SIGNING,), Slip.SIGNING, "slip.sign", "签字"),
                    )
                },
                "unreachable from 'draft': ['paid']",
            ),
            (
                {
                    "transitions": (
                        SEND,
                        SIGN_MORE,
                        RECALL,
                        Transition(
                            Do.SIGN,
                            (Slip.SIGNING,),
                            Slip.PAID,
                            "slip.sign",
                            "付款",
                            route=last_signature,
                        ),
                    )
                },
                "event 'sign': its transitions must share one label and data keys",
            ),
            (
                {
                    "transitions": (
                        SEND,
                        RECALL,
                        Transition(
                            Do.SIGN,
                            (Slip.SIGNING,),
                            Slip.PAID,
                            "slip.sign",
                            "签字",
                            route=lambda s: True,
                        ),
                    )
                },
                "a route condition needs a name",
            ),
            (
                {
                    "transitions": (
                        SEND,
                        SIGN_MORE,
                        RECALL,
                        Transition(
                            Do.SIGN,
                            (Slip.SIGNING,),
                            Slip.PAID,
                            "slip.sign",
                            "签字",
                            guards=("a",),
                            overridable=("b",),
                        ),
                    )
                },
                "only guards it runs can be overridable",
            ),
        ],
    )
    def test_refused_naming_the_problem(self, changes: dict[str, object], problem: str) -> None:
        with pytest.raises(MachineError) as refused:
            slip_machine(**changes)
        assert problem in str(refused.value)
