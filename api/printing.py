"""The printable publicity notice (公示, after Bozhou's 附件6 公示样本): an A4 HTML page with print
CSS (Jinja2, api/pages/templates/publicity_notice.html) and the same notice as PDF.

The PDF is drawn by reportlab with its built-in CID font STSong-Light (Adobe-GB1): the font is
named, not embedded, so no font file is needed on the server, and readers substitute their own
Song face (every PDF reader on Chinese Windows and macOS has one; poppler uses Noto CJK). Chosen
over Chromium's print-to-PDF because it needs no browser on the server (`make install` installs
one only as root, and starting one per request costs ~1 s and ~150 MB), and over WeasyPrint
because that needs Pango and CJK fonts from the system. A 300-row notice renders in ~0.1 s.
Given names come masked from the read (张*明); identity numbers are never part of it."""

from __future__ import annotations

import datetime as dt
import io
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from jinqiu.states.publicity_list import ListState

EDUCATION = {
    "preschool": "学前",
    "primary": "小学",
    "junior": "初中",
    "senior": "高中",
    "vocational": "中职",
    "college": "大专",
    "undergraduate": "本科",
    "postgraduate": "研究生",
    "special": "特殊教育",
}
FONT = "STSong-Light"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("jinqiu.api.pages", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",)),
    )


def _cn(day: dt.date | None) -> str:
    return "—" if day is None else f"{day.year}年{day.month}月{day.day}日"


def notice_context(view: dict[str, Any], today: dt.date) -> dict[str, Any]:
    return {
        "title": f"{view['unit_name']}金秋助学拟资助对象名单公示",
        "unpublished": view["status"] == ListState.DRAFT,
        "campaign_name": view["campaign_name"],
        "unit_name": view["unit_name"],
        "contact_name": view["contact_name"],
        "contact_phone": view["contact_phone"],
        "contact_email": view["contact_email"],
        "period": f"{_cn(view['starts_on'])}至{_cn(view['ends_on'])}",
        "working_days": view["working_days"],
        "issued_on": _cn(view["starts_on"] or today),
        "rows": [
            {**row, "education": EDUCATION.get(row["education_level"], row["education_level"])}
            for row in view["rows"]
        ],
    }


def notice_html(view: dict[str, Any], today: dt.date) -> str:
    template = _environment().get_template("publicity_notice.html")
    return template.render(**notice_context(view, today))


def notice_pdf(view: dict[str, Any], today: dt.date) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    context = notice_context(view, today)
    body = ParagraphStyle("body", fontName=FONT, fontSize=12, leading=19, firstLineIndent=24,
                          wordWrap="CJK")  # fmt: skip
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=26, alignment=TA_CENTER,
                           firstLineIndent=0, spaceAfter=6 * mm)  # fmt: skip
    right = ParagraphStyle("right", parent=body, alignment=TA_RIGHT, firstLineIndent=0)
    cell = ParagraphStyle("cell", parent=body, fontSize=10.5, leading=14, firstLineIndent=0)
    story: list[Any] = [Paragraph(_escape(context["title"]), title)]
    if context["unpublished"]:
        story.append(
            Paragraph("（草拟，尚未发布）", ParagraphStyle("d", parent=title, fontSize=12))
        )
    story += [
        Paragraph(
            _escape(
                f"根据{context['campaign_name']}的安排，经个人申请、单位审核，现将"
                f"{context['unit_name']}拟资助对象名单予以公示（共 {len(context['rows'])} 人）。"
            ),
            body,
        ),
        Paragraph(
            _escape(
                f"公示期：{context['period']}（{context['working_days']}个工作日）。公示期内，如对"
                f"名单有异议，请以书面或电话形式向{context['unit_name']}反映，反映情况须实事求是，"
                "并提供联系方式以便核实。"
            ),
            body,
        ),
        Paragraph(
            _escape(
                f"联系人：{context['contact_name'] or '—'}　　"
                f"联系电话：{context['contact_phone'] or '—'}"
                + (f"　　电子邮箱：{context['contact_email']}" if context["contact_email"] else "")
            ),
            body,
        ),
        Spacer(1, 3 * mm),
    ]
    data: list[list[Any]] = [["序号", "学生姓名", "就读（录取）学校", "学历层次", "资助金额（元）"]]
    for n, row in enumerate(context["rows"], start=1):
        data.append([str(n), row["name"], Paragraph(_escape(row["school"]), cell),
                     row["education"], row["amount"] or "—"])  # fmt: skip
    table = Table(data, colWidths=[14 * mm, 26 * mm, 74 * mm, 24 * mm, 32 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 10.5),
                ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
                ("ALIGN", (0, 0), (-1, 0), "CENTER"),
                ("ALIGN", (0, 1), (1, -1), "CENTER"),
                ("ALIGN", (3, 1), (3, -1), "CENTER"),
                ("ALIGN", (4, 1), (4, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [table, Spacer(1, 10 * mm), Paragraph(_escape(context["unit_name"]), right),
              Paragraph(_escape(context["issued_on"]), right)]  # fmt: skip
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                      topMargin=20 * mm, bottomMargin=20 * mm, title=context["title"],
                      author=context["unit_name"]).build(story)  # fmt: skip
    return out.getvalue()


def _escape(text: str) -> str:
    """reportlab's Paragraph reads a small XML markup: text is escaped like HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
