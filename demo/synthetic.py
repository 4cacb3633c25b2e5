"""Synthetic but realistic families for the demo, the benchmarks and the tests: Chinese names,
valid identity numbers (Weihai region codes), schools and hardship causes. Seeded: the same
seed gives the same families."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.payments.cards import with_check_digit

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英文华建国志红玉梅晓东海燕鹏飞宇浩然子涵欣怡梓萱一诺雨桐思远佳琪俊杰嘉怡"
WEIHAI_REGIONS = (
    "371002",
    "371003",
    "371082",
    "371083",
    "371071",
    "371072",
)  # 环翠 文登 荣成 乳山 高区 经区
HARDSHIP_CAUSES = (
    "本人患重病，长期医治",
    "配偶下岗失业，家庭收入低",
    "子女多，教育负担重",
    "因意外事故致残",
    "单亲家庭，独自抚养子女",
    "家庭成员患慢性病，医疗支出大",
)
WORK_UNITS = (
    "威海市某纺织有限公司",
    "文登区某机械厂",
    "荣成市某水产公司",
    "乳山市某食品公司",
    "环翠区某物业公司",
    "威海某汽车配件公司",
    "某快递网点（新就业形态）",
    "某建筑工地（农民工）",
)
SCHOOLS = {
    "undergraduate": (
        "山东大学（威海）",
        "哈尔滨工业大学（威海）",
        "中国海洋大学",
        "青岛大学",
        "鲁东大学",
        "山东财经大学",
    ),
    "college": ("威海职业学院", "山东外贸职业学院", "烟台职业学院"),
    "postgraduate": ("山东大学", "中国海洋大学"),
    "senior": ("威海市第一中学", "文登第一中学", "荣成市第二中学"),
    "vocational": ("威海市职业中等专业学校", "乳山市职业中等专业学校"),
    "junior": ("威海市实验中学", "文登区实验中学"),
    "primary": ("威海市实验小学", "环翠区古寨小学"),
    "preschool": ("威海市机关幼儿园",),
}
MAJORS = (
    "机械工程",
    "会计学",
    "计算机科学与技术",
    "护理",
    "海洋科学",
    "电子商务",
    "汉语言文学",
    None,
)
LEVELS = (
    ("undergraduate", 40),
    ("college", 20),
    ("senior", 14),
    ("vocational", 8),
    ("junior", 8),
    ("primary", 6),
    ("postgraduate", 3),
    ("preschool", 1),
)


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def id_number(rng: random.Random, born: dt.date, *, male: bool | None = None) -> str:
    seq = rng.randrange(0, 500) * 2 + (
        1 if (male if male is not None else rng.random() < 0.5) else 0
    )
    return make_id_number(rng.choice(WEIHAI_REGIONS), born, seq)


def family(rng: random.Random, campaign_year: int, *, today: dt.date) -> dict[str, Any]:
    """One worker and one student, as the case-creation input (docs/CONTRACT.md field names)."""
    level = rng.choices([lv for lv, _ in LEVELS], weights=[w for _, w in LEVELS])[0]
    age = {
        "preschool": 5,
        "primary": 9,
        "junior": 13,
        "senior": 16,
        "vocational": 16,
        "college": 18,
        "undergraduate": 18,
        "postgraduate": 23,
    }[level] + rng.randrange(0, 3)
    student_born = dt.date(campaign_year - age, rng.randrange(1, 13), rng.randrange(1, 29))
    worker_born = dt.date(
        student_born.year - rng.randrange(24, 36), rng.randrange(1, 13), rng.randrange(1, 29)
    )
    surname = rng.choice(SURNAMES)
    archive_status = rng.choices(
        ("deep", "relative", "accident", "none"), weights=(30, 45, 10, 15)
    )[0]
    categories: list[str] = []
    if rng.random() < 0.2:
        # Weihai's two categories besides the archive (农民工, 新就业形态), drawn from four
        # as before so a seed gives the same families.
        categories.append(
            rng.choice(("migrant_worker", "gig_worker", "migrant_worker", "gig_worker"))
        )
    archived_on = None
    if archive_status != "none":
        # Mostly current; about one in ten archived over a year ago (must re-declare).
        months_ago = rng.randrange(13, 20) if rng.random() < 0.1 else rng.randrange(0, 11)
        archived_on = today - dt.timedelta(days=30 * months_ago + rng.randrange(0, 20))
    tier = None
    if level == "undergraduate":
        tier = rng.choices(("first", "second", "third"), weights=(30, 55, 15))[0]
    tuition = None
    if level in {"preschool", "primary", "junior", "senior", "vocational"}:
        tuition = str(rng.choice((800, 1200, 1500, 1800, 2400, 3000)))
    school = rng.choice(SCHOOLS[level])
    student = {
        "name": surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
        "id_number": id_number(rng, student_born),
        "relation": rng.choice(("子", "女")),
        "ethnicity": "汉族" if rng.random() < 0.97 else rng.choice(("回族", "满族", "朝鲜族")),
        "political_status": rng.choice(("共青团员", "群众", "少先队员")),
        "hukou_type": rng.choice(("城镇", "农村")),
        "health_status": "健康" if rng.random() < 0.93 else "患病",
        "medical_insurance": rng.choice(("城乡居民医保", "职工医保")),
        "education_level": level,
        "school": school,
        "major": rng.choice(MAJORS)
        if level in {"undergraduate", "college", "postgraduate", "vocational"}
        else None,
        "enrollment_year": campaign_year,
        "program_years": {"undergraduate": 4, "college": 3, "postgraduate": 3}.get(level, 3),
        "exam_score": rng.randrange(420, 650) if level in {"undergraduate", "college"} else None,
        "admitted_school": school if level in {"undergraduate", "college"} else None,
        "tier": tier,
        "tuition_invoice": tuition,
        "already_aided_by": "国家助学金" if rng.random() < 0.03 else None,
    }
    worker = {
        "name": surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
        "id_number": id_number(rng, worker_born),
        "phone": "13" + "".join(str(rng.randrange(10)) for _ in range(9)),
        "work_unit": rng.choice(WORK_UNITS),
        "address": f"山东省威海市{rng.choice(('环翠区', '文登区', '荣成市', '乳山市'))}{rng.randrange(1, 300)}号",
        "household_size": rng.randrange(3, 6),
        "monthly_income_per_capita": str(rng.randrange(600, 1600)),
        "employment_status": rng.choice(("在岗", "下岗", "灵活就业", "失业")),
        "hardship_cause": rng.choice(HARDSHIP_CAUSES),
        "archive_status": archive_status,
        "archived_on": archived_on.isoformat() if archived_on else None,
        "categories": categories,
        "bank_card_number": _card("".join(str(rng.randrange(10)) for _ in range(15))),
    }
    return {"worker": worker, "student": student}


def _card(digits: str) -> str:
    """A 19-digit 中国农业银行 debit card that passes the Luhn check, from 15 random digits (the
    draws the demo has always made, so every later draw stays the same)."""
    return with_check_digit("622848" + digits[:12])
