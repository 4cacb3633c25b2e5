"""The donor (社会资源) and 自筹 page (both databases): the city's manager records a donor with
its intent, a district's manager its own funds; both show on the page and through the API
(the same service); a bad amount is an error page that stores nothing; those without the grant
see no form and are refused; free text is masked without pii.read; a sibling district sees
neither the other's funds nor may record for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from jinqiu.workflow.donors.models import Donor, UnitFund
from tests.api.conftest import World
from tests.api.test_publicity_pages import csrf_of, page_client
from tests.factories import worker

donor_t = Donor.__table__  # type: ignore[attr-defined]
unit_fund_t = UnitFund.__table__  # type: ignore[attr-defined]
HTML = {"accept": "text/html"}


def stored(world: World, table: Any) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_manager_records_a_donor_with_its_intent(world: World) -> None:
    id_number = worker()["id_number"]
    browser = page_client(world, "manager.wh")
    index = browser.get(f"/donors?campaign={world.campaign}")
    assert index.status_code == 200 and 'href="/donors"' in index.text
    assert "暂无捐赠方" in index.text and 'data-testid="record-donor"' in index.text
    csrf = csrf_of(index.text)
    donor = {
        "csrf_token": csrf, "campaign": world.campaign, "name": "威海某爱心企业",
        "contact": "王经理 0631-5200000", "amount": "20000",
        "education_levels": ["undergraduate", "college"], "max_per_student": "3000",
        "statement": "资助在读大学生", "summary": f"企业结对助学，经办人证件 {id_number}",
    }  # fmt: skip
    made = browser.post("/donors", data=donor)
    assert made.status_code == 200 and "已登记捐赠方：威海某爱心企业" in made.text, made.text
    assert "20000.00" in made.text
    assert "学历：本科、大专；每人不超过 3000 元；“资助在读大学生”" in made.text
    assert id_number in made.text  # the manager holds pii.read

    listed = world.client.get(
        f"/api/campaigns/{world.campaign}/donors", headers=world.as_("manager.wh")
    ).json()
    assert [(d["name"], d["amount"], d["intent"]["education_levels"]) for d in listed] == [
        ("威海某爱心企业", "20000.00", ["undergraduate", "college"])
    ]
    assert listed[0]["fund_source"] == f"donor:{listed[0]['id']}"

    bad = browser.post("/donors", data={**donor, "amount": "-5"}, headers=HTML)
    assert bad.status_code == 422 and "<html" in bad.text.lower() and "amount" in bad.text
    unknown = browser.post("/donors", data={**donor, "education_levels": ["kindergarten"]},
                           headers=HTML)  # fmt: skip
    assert unknown.status_code == 422 and "<html" in unknown.text.lower()
    assert stored(world, donor_t) == 1

    reviewer = page_client(world, "reviewer.wh")  # the city's: it sees the city's donors
    read = reviewer.get(f"/donors?campaign={world.campaign}")
    assert read.status_code == 200 and "威海某爱心企业" in read.text
    assert id_number not in read.text  # masked without pii.read
    assert 'data-testid="record-donor"' not in read.text
    refused = reviewer.post("/donors", data={**donor, "csrf_token": csrf_of(read.text)},
                            headers=HTML)  # fmt: skip
    assert refused.status_code == 403 and "<html" in refused.text.lower()
    stale = browser.post("/donors", data={**donor, "csrf_token": "stale"}, headers=HTML)
    assert stale.status_code >= 400 and "<html" in stale.text.lower()
    assert stored(world, donor_t) == 1


def test_a_district_records_its_own_funds_and_sees_only_its_subtree(world: World) -> None:
    browser = page_client(world, "manager.wh-hc")
    index = browser.get(f"/donors?campaign={world.campaign}")
    assert 'data-testid="record-unit-fund"' in index.text
    assert 'data-testid="record-donor"' in index.text  # managers manage campaigns too
    csrf = csrf_of(index.text)
    fund = {"csrf_token": csrf, "campaign": world.campaign, "unit": "WH-HC", "source": "union",
            "amount": "5000", "note": "区总工会自筹"}  # fmt: skip
    made = browser.post("/unit-funds", data=fund)
    assert made.status_code == 200 and "已登记自筹：WH-HC 5000.00 元" in made.text, made.text
    assert "各级工会投入" in made.text and "区总工会自筹" in made.text
    api = world.client.get(
        f"/api/campaigns/{world.campaign}/unit-funds", headers=world.as_("manager.wh")
    ).json()
    assert [(f["unit"], f["source"], f["amount"]) for f in api] == [("WH-HC", "union", "5000.00")]

    bad = browser.post("/unit-funds", data={**fund, "source": "lottery"}, headers=HTML)
    assert bad.status_code == 422 and "<html" in bad.text.lower() and "source" in bad.text
    sibling = page_client(world, "manager.wh-wd")
    page = sibling.get(f"/donors?campaign={world.campaign}")
    assert "区总工会自筹" not in page.text and "暂无自筹资金记录" in page.text
    foreign = sibling.post("/unit-funds", data={**fund, "csrf_token": csrf_of(page.text)},
                           headers=HTML)  # fmt: skip
    assert foreign.status_code == 422 and "<html" in foreign.text.lower()
    clerk = page_client(world, "clerk.wh-hc-001")
    seen = clerk.get(f"/donors?campaign={world.campaign}")
    assert 'data-testid="record-unit-fund"' not in seen.text
    assert "区总工会自筹" not in seen.text  # the district's funds: above the clerk's union
    refused = clerk.post("/unit-funds", data={**fund, "csrf_token": csrf_of(seen.text)},
                         headers=HTML)  # fmt: skip
    assert refused.status_code == 403 and "<html" in refused.text.lower()
    assert stored(world, unit_fund_t) == 1
