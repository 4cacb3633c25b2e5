"""Fund rows hold a province's budget exactly and still refuse to be overdrawn."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from tests.factories import weihai

fund_t = FundSource.__table__  # type: ignore[attr-defined]


def test_a_budget_beyond_32_bit_fen_is_kept_exactly_and_overdrawing_is_refused(
    db: Engine, clock: ManualClock
) -> None:
    _tree, _campaign = weihai(db, clock, funds=[{"source": "government", "budget": "50000000.01"}])
    with db.connect() as conn:
        budget = conn.execute(select(fund_t.c.budget_fen)).scalar_one()
    assert budget == 5_000_000_001  # more than INTEGER's 2,147,483,647 fen
    with pytest.raises(IntegrityError), transaction(db) as conn:
        conn.execute(update(fund_t).values(reserved_fen=budget + 1))
    with transaction(db) as conn:
        conn.execute(update(fund_t).values(reserved_fen=budget))
