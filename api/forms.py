"""The printed forms (workflow/forms/content.py says what they hold): a case's approval
registration form or 摸底表 and a unit's 摸底表, as A4 HTML (Jinja2, api/pages/templates/
case_form.html and survey_form.html, print CSS) and as PDF drawn by reportlab with the built-in
CID font STSong-Light, as the publicity notice is (api/printing.py says why)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from jinqiu.api.printing import FONT, _environment, _escape

BOX = "□"
TICK = "☑"


def form_html(form: dict[str, Any]) -> str:
    return _environment().get_template("case_form.html").render(f=form)


def survey_html(form: dict[str, Any]) -> str:
    return _environment().get_template("survey_form.html").render(f=form)


def _cn(day: dt.date | None, *, blank: str = "　　年　　月　　日") -> str:
    return blank if day is None else f"{day.year}年{day.month}月{day.day}日"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def form_pdf(form: dict[str, Any]) -> bytes:
    """The case's form on one A4 page: the same boxes as the HTML, in a ruled table."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_font()
    body = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=15, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=22, alignment=TA_CENTER,
                           spaceAfter=3 * mm)  # fmt: skip
    label = ParagraphStyle("label", parent=body, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=body, alignment=TA_RIGHT)

    def p(text: Any, style: ParagraphStyle = body) -> Any:
        return Paragraph(_escape(_text(text)), style)

    w, s = form["worker"], form["student"]
    rows: list[list[Any]] = []
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = []
    heights: list[float | None] = []

    def row(
        *cells: Any, span: list[tuple[int, int]] | None = None, height: float | None = None
    ) -> None:
        n = len(rows)
        rows.append([c if not isinstance(c, str) else p(c) for c in cells])
        for a, b in span or []:
            spans.append(((a, n), (b, n)))
        heights.append(height)

    def lab(text: str) -> Any:
        return p(text, label)

    if form["kind"] == "weihai_survey":
        head = f"单位名称（盖章）：{form['unit_name']}　　职工姓名：{w['name']}　　填报日期：{_cn(form['printed_on'])}"
        show_exam = s["exam_this_year"]
        row(
            lab("学生姓名"),
            s["name"],
            lab("与职工关系"),
            _text(s["relation"]),
            lab("年龄"),
            _text(s["age"]),
        )
        row(
            lab("民族"),
            _text(s["ethnicity"]),
            lab("政治面貌"),
            _text(s["political_status"]),
            lab("身份证号码"),
            _text(s["id_number"]),
        )
        row(
            lab("户口类型"),
            _text(s["hukou_type"]),
            lab("健康状况"),
            _text(s["health_status"]),
            lab("医保状况"),
            _text(s["medical_insurance"]),
        )
        row(lab("下面由在校生填写"), "", "", "", "", "", span=[(0, 5)])
        row(
            lab("当前学历"),
            s["education"],
            lab("入学年份"),
            _text(s["enrollment_year"]),
            lab("年制"),
            _text(s["program_years"]),
        )
        row(lab("学校"), _text(s["school"]), "", "", "", "", span=[(1, 5)])
        row(lab("下面仅今年参加中考或高考的学生需要填写"), "", "", "", "", "", span=[(0, 5)])
        row(lab("中考/高考分数"), _text(s["exam_score"]) if show_exam else "", lab("录取学校"),
            _text(s["admitted_school"]) if show_exam else "", "", "", span=[(3, 5)])  # fmt: skip
        row(lab("备注"), _text(s["already_aided_by"]), "", "", "", "", span=[(1, 5)])
        row(lab("各级审核意见"), "", "", "", "", "", span=[(0, 5)])
    else:
        head = f"单位：{form['unit_name']}　　　　{_cn(form['filled_on'])}"
        income = f"{w['income']} 元" if w["income"] else ""
        row(
            lab("职工姓名"),
            w["name"],
            lab("性别"),
            w["gender_label"],
            lab("出生年月"),
            w["birth_month"],
        )
        row(
            lab("工作单位"),
            _text(w["work_unit"]),
            lab("身份证号码"),
            _text(w["id_number"]),
            "",
            "",
            span=[(3, 5)],
        )
        row(
            lab("家庭住址"),
            _text(w["address"]),
            lab("联系电话"),
            _text(w["phone"]),
            "",
            "",
            span=[(3, 5)],
        )
        row(
            lab("家庭人口"),
            _text(w["household_size"]),
            lab("家庭月人均收入"),
            income,
            lab("就业状况"),
            _text(w["employment_status"]),
        )
        row(lab("家庭致困原因"), _text(w["hardship_cause"]), "", "", "", "", span=[(1, 5)])
        if form["kind"] == "dalian_freshman":
            row(
                lab("考上大学子女姓名"),
                s["name"],
                lab("考入学校名称及专业"),
                s["school_and_major"],
                lab("所学学历"),
                s["education"],
            )
        else:
            row(
                lab("学生姓名"),
                s["name"],
                lab("学校名称及专业"),
                s["school_and_major"],
                "",
                "",
                span=[(3, 5)],
            )
            row(
                lab("考取年度"),
                _text(s["enrollment_year"]),
                lab("所学学历"),
                s["education"],
                "",
                "",
                span=[(3, 5)],
            )
    for box in form["boxes"]:
        signed = "　".join(
            part
            for part in (
                "盖章",
                f"经办人：{box['reviewer']}" if box["reviewer"] else "",
                _cn(box["on"]),
            )
            if part
        )
        row(lab(box["title"]), [p(box["opinion"] or ""), Spacer(1, 8 * mm), p(signed, right)],
            "", "", "", "", span=[(1, 5)], height=30 * mm)  # fmt: skip
    table = Table(rows, colWidths=[28 * mm, 30 * mm, 28 * mm, 36 * mm, 22 * mm, 36 * mm],
                  rowHeights=heights)  # fmt: skip
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 10.5),
                ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                *[("SPAN", a, b) for a, b in spans],
            ]
        )
    )
    story: list[Any] = [
        p(form["attachment"]),
        p(form["title"], title),
        p(head),
        Spacer(1, 2 * mm),
        table,
    ]
    if form["kind"] == "dalian_freshman":
        paid = form["paid_on"]
        story += [
            Spacer(1, 3 * mm),
            p(f"备注：1. 困难职工档案内{TICK if form['archived'] else BOX}　其中困难农民工"
              f"{TICK if form['migrant_worker'] else BOX}"),
            p(f"2. 本单位资助的对象{TICK if form['aided_here'] else BOX}　助学资金 "
              f"{form['amount'] or '　　　'} 元，于 "
              + (f"{paid.month} 月 {paid.day} 日" if paid else "　 月　 日") + "发放。"),
        ]  # fmt: skip
    if form["kind"] != "weihai_survey":
        story.append(
            p("　　".join(f"{r['title']}：{r['name'] or '　　　　'}" for r in form["reviewers"]))
        )
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                      topMargin=15 * mm, bottomMargin=15 * mm, title=form["title"],
                      author=form["unit_name"]).build(story)  # fmt: skip
    return out.getvalue()


SURVEY_COLUMNS = (
    ("序号", 8), ("职工姓名", 14), ("学生姓名", 14), ("与职工关系", 10), ("年龄", 8), ("民族", 10),
    ("政治面貌", 12), ("身份证号码", 30), ("户口类型", 12), ("健康状况", 12), ("医保状况", 14),
    ("当前学历", 10), ("入学年份", 11), ("年制", 8), ("学校", 30), ("分数", 10),
    ("录取学校", 28), ("备注", 16),
)  # fmt: skip


def survey_pdf(form: dict[str, Any]) -> bytes:
    """A unit's 摸底表 on landscape A4 pages, the header row repeated."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_font()
    body = ParagraphStyle("body", fontName=FONT, fontSize=8, leading=10.5, wordWrap="CJK",
                          alignment=TA_CENTER)  # fmt: skip
    title = ParagraphStyle("title", parent=body, fontSize=15, leading=20, spaceAfter=2 * mm)
    head = ParagraphStyle("head", parent=body, fontSize=10, leading=14, alignment=0)

    def p(text: Any, style: ParagraphStyle = body) -> Any:
        return Paragraph(_escape(_text(text)), style)

    data: list[list[Any]] = [[p(name) for name, _ in SURVEY_COLUMNS]]
    for n, r in enumerate(form["rows"], start=1):
        values = (n, r["worker_name"], r["name"], r["relation"], r["age"], r["ethnicity"],
                  r["political_status"], r["id_number"], r["hukou_type"], r["health_status"],
                  r["medical_insurance"], r["education"], r["enrollment_year"],
                  r["program_years"], r["school"], r["exam_score"], r["admitted_school"],
                  r["remark"])  # fmt: skip
        data.append([p(v) for v in values])
    table = Table(data, colWidths=[w * mm for _, w in SURVEY_COLUMNS], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story: list[Any] = [
        p(form["attachment"], head),
        p(form["title"], title),
        p(f"单位名称（盖章）：{form['unit_name']}　　共 {len(form['rows'])} 人　　"
          f"填报日期：{_cn(form['printed_on'])}", head),
        Spacer(1, 2 * mm),
        table,
    ]  # fmt: skip
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm,
                      topMargin=12 * mm, bottomMargin=12 * mm, title=form["title"],
                      author=form["unit_name"]).build(story)  # fmt: skip
    return out.getvalue()
