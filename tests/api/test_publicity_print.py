"""The printed publicity list in a real browser: the notice the API serves (`?format=html`) laid
out by Debian's headless Chromium on A4 paper (print media), rendered to PNG and to PDF. The
SQLite run's PNG is kept as docs/screenshots/publicity-notice.png. Needs /usr/bin/chromium (see
tests/api/browser_site.py: CI never skips it)."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
from typing import Any

from jinqiu.states import CaseState
from tests.api.browser_site import SHOTS, browser  # noqa: F401  (the module's browser fixture)
from tests.api.conftest import World
from tests.factories import ROOT, case_in

DOCS_SHOT = ROOT / "docs" / "screenshots" / "publicity-notice.png"
A4_AT_96_DPI = {"width": 794, "height": 1123}
NAMES = ("张小明", "李华", "欧阳晓东", "王芳芳", "赵磊", "陈思远", "刘洋", "孙丽娜")
SCHOOLS = ("山东大学（威海）", "哈尔滨工业大学（威海）", "威海职业学院", "山东交通学院")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_the_printed_list_renders_on_a4_with_masked_names(
    world: World,
    browser: Any,  # noqa: F811
) -> None:
    cases = [
        case_in(world.engine, world.clock, world.campaign, "WH-HC-00" + str(1 + i % 2),
                CaseState.READY_FOR_PUBLICITY,
                student_changes={"name": name, "school": SCHOOLS[i % len(SCHOOLS)]})
        for i, name in enumerate(NAMES)
    ]  # fmt: skip
    world.clock.set(dt.datetime(2024, 8, 12, 9))
    headers = world.as_("reviewer.wh-hc")
    made = world.client.post(f"/api/campaigns/{world.campaign}/publicity-lists",
                             json={"unit": "WH-HC"}, headers=headers)  # fmt: skip
    list_id = made.json()["id"]
    assert sorted(made.json()["case_ids"]) == sorted(cases)
    world.client.post(f"/api/publicity-lists/{list_id}/publish", headers=headers)
    html = world.client.get(f"/api/publicity-lists/{list_id}?format=html", headers=headers).text

    context = browser.new_context(viewport=A4_AT_96_DPI, locale="zh-CN")
    try:
        page = context.new_page()
        page.emulate_media(media="print")
        page.set_content(html, wait_until="load")
        text = page.inner_text("body")
        for masked in ("张*明", "李*", "欧**东", "王*芳"):
            assert masked in text
        assert "张小明" not in text and "2024年8月12日至2024年8月19日" in text
        rows = page.locator("tbody tr")
        assert rows.count() == len(NAMES)
        table_width = page.locator("table").bounding_box()["width"]
        assert table_width <= A4_AT_96_DPI["width"]  # nothing runs off the paper
        dialect = world.engine.dialect.name
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / f"publicity-notice-{dialect}.png"
        data = page.screenshot(path=str(shot), full_page=True)
        width, height = png_size(data)
        assert width == A4_AT_96_DPI["width"] and height >= 600
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF-") and b"/Type /Page" in pdf
        if dialect == "sqlite":
            DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS_SHOT)
    finally:
        context.close()
