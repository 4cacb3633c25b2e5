"""The official statistics tables, item by item, as the notices print them.

Each item is computed from the cases (`metric`), summed from other items (`sum_of`, so the
notice's formulas such as A = A1+A2+A3+A4 hold by construction), or taken from the figures the
units submitted with their report (`input`: what nothing records, e.g. job fairs held; from the
report of `kind`, the statistics report unless said). The employment and work-study items are
counted from their registers (`workflow.statistics.records` says what each metric key counts);
each table's note names the items still typed in. A table laid out `per_donor` also lists one
row per donor (Weihai 附件2). A campaign names the tables it shows (its file's
`statistics.tables`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.errors import ValidationFailed

Unit = Literal["万元", "人次", "人", "个", "场", "元", "家"]
# The report kind whose figures the `input` items are taken from (workflow.statistics.reports
# declares its items from these tables): the latest revision per unit, no other kind.
STATISTICS_KIND = "statistics"


@dataclass(frozen=True)
class Item:
    code: str
    label: str
    unit: Unit
    metric: str | None = None  # a key of workflow.statistics.compute.METRICS
    sum_of: tuple[str, ...] = ()
    input: str | None = None  # a key in the submitted report's figures
    group: str = ""  # the notice's row number (序号 / 编号), printed once per group
    kind: str = STATISTICS_KIND  # the report kind an `input` item is filed with


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    source: str  # which notice and attachment
    items: tuple[Item, ...]
    columns: tuple[str, str, str] = ("序号", "项目", "合计")
    note: str = ""
    rows: dict[str, str] = field(default_factory=dict)
    # "per_donor": besides its items (the totals), one row per donor of the unit's subtree:
    # 单位名称 / 助学资金（元） / 人数 (students it actually aided) / 整合资源情况简介.
    layout: Literal["items", "per_donor"] = "items"


UNIVERSITY = "高校学生"
SENIOR = "高中和中专学生"
BASIC = "小学和初中学生及其他"

WEIHAI_2024_A1 = Table(
    key="weihai_2024_a1",
    title="2024年工会金秋助学活动情况统计表",
    source="威海市总工会 2024 附件1",
    note="填报说明：数据统计截止日期为2024年8月30日。H、I 项由勤工俭学岗位登记统计。",
    items=(
        Item(
            "A",
            "共筹集资金（万元）A=A1+A2+A3+A4",
            "万元",
            sum_of=("A1", "A2", "A3", "A4"),
            group="1",
        ),
        Item("A1", "其中：各级党政资金（万元）", "万元", metric="raised_government"),
        Item("A2", "社会捐助（万元）", "万元", metric="raised_donation"),
        Item("A3", "各级工会投入（万元）", "万元", metric="raised_union"),
        Item("A4", "其他方面筹集（万元）", "万元", metric="raised_other"),
        Item("B", "发放助学款总额（万元）B=B1+B2+B3", "万元", sum_of=("B1", "B2", "B3"), group="2"),
        Item("B1", "其中：高校学生（万元）", "万元", metric="paid_university"),
        Item("B2", "高中和中专学生（万元）", "万元", metric="paid_senior"),
        Item("B3", "小学和初中学生及其他（万元）", "万元", metric="paid_basic"),
        Item("C", "资助对象总计（人次）C=C1+C2+C3", "人次", sum_of=("C1", "C2", "C3"), group="3"),
        Item("C1", "其中：高校学生（人次）", "人次", metric="aided_university"),
        Item("C2", "高中和中专学生（人次）", "人次", metric="aided_senior"),
        Item("C3", "小学和初中学生及其他（人次）", "人次", metric="aided_basic"),
        Item("D", "资助困难农民工家庭子女（人次）", "人次", metric="aided_migrant", group="4"),
        Item("E", "共向困难农民工家庭子女发放助学款（万元）", "万元", metric="paid_migrant"),
        Item(
            "F", "资助困难新就业形态劳动者家庭子女（人次）", "人次", metric="aided_gig", group="5"
        ),
        Item("G", "共向困难新就业形态劳动者家庭子女发放助学款（万元）", "万元", metric="paid_gig"),
        Item("H", "为困难职工家庭子女提供勤工俭学岗位（个）", "个", metric="posts", group="6"),
        Item("I", "困难职工家庭子女参加勤工俭学活动（人次）", "人次", metric="participants"),
    ),
)

WEIHAI_2024_A2 = Table(
    key="weihai_2024_a2",
    title="整合社会资源相关工作情况统计表",
    source="威海市总工会 2024 附件2",
    columns=("项目", "单位名称", "数额"),
    note="每个爱心企业、社会机构、公益慈善组织一行：助学资金为其捐赠金额，人数为其资金实际资助（已发放）的学生。",
    layout="per_donor",
    items=(
        Item(
            "S1",
            "动员爱心企业、社会机构、公益慈善组织等：助学资金（元）",
            "元",
            metric="donor_amount_yuan",
        ),
        Item("S2", "资助困难职工家庭子女上学人数（人）", "人", metric="aided_by_donors"),
        Item("S3", "参与的爱心企业、社会机构、公益慈善组织（家）", "家", metric="donors"),
    ),
)
DONOR_COLUMNS = ("单位名称", "助学资金（元）", "人数", "整合资源情况简介")

_RAISED = (
    Item(
        "01A",
        "助学活动共筹集资金（万元）",
        "万元",
        sum_of=("01B", "01C", "01D", "01E"),
        group="（01）",
    ),
    Item("01B", "其中各级党委政府资助（万元）", "万元", metric="raised_government"),
    Item("01C", "其中社会捐助（万元）", "万元", metric="raised_donation"),
    Item("01D", "其中各级工会投入（万元）", "万元", metric="raised_union"),
    Item("01E", "其中其它方面筹集（万元）", "万元", metric="raised_other"),
    Item(
        "02A", "助学活动共发放助学款（万元）", "万元", sum_of=("02B", "02C", "02D"), group="（02）"
    ),
    Item("02B", "其中小学和初中阶段（万元）", "万元", metric="paid_basic"),
    Item("02C", "其中高中和中等职业教育阶段（万元）", "万元", metric="paid_senior"),
    Item("02D", "其中大专以上（万元）", "万元", metric="paid_university"),
)

QINGPU_2017_AID = Table(
    key="qingpu_2017_aid",
    title="2017年工会金秋助学活动情况统计表",
    source="青浦区总工会 2017 附件2",
    columns=("编号", "项目", "数量"),
    note="07A、07A+ 由勤工俭学岗位登记统计；06A、06A+（暑假托管班）取自各单位报送的数据（figures）。",
    items=(
        *_RAISED,
        Item(
            "03A",
            "在档的困难职工和困难农民工家庭升学子女（人）",
            "人",
            sum_of=("03B", "03C", "03D"),
            group="（03）",
        ),
        Item("03B", "其中小学和初中阶段（人）", "人", metric="entering_basic"),
        Item("03C", "高中和中等职业教育阶段（人）", "人", metric="entering_senior"),
        Item("03D", "大专以上（人）", "人", metric="entering_university"),
        Item(
            "04A",
            "助学活动中共资助困难职工和困难农民工子女（人）",
            "人",
            sum_of=("04B", "04C", "04D"),
            group="（04）",
        ),
        Item("04B", "其中小学和初中阶段（人）", "人", metric="aided_basic"),
        Item("04C", "高中和中等职业教育阶段（人）", "人", metric="aided_senior"),
        Item("04D", "大专以上（人）", "人", metric="aided_university"),
        Item(
            "05A",
            "助学活动中共资助困难农民工子女（人）",
            "人",
            sum_of=("05B", "05C", "05D"),
            group="（05）",
        ),
        Item("05A$", "共发放助学款（万元）", "万元", sum_of=("05B$", "05C$", "05D$")),
        Item("05B", "其中小学和初中阶段（人）", "人", metric="aided_migrant_basic"),
        Item("05B$", "发放助学款（万元）", "万元", metric="paid_migrant_basic"),
        Item("05C", "高中和中等职业教育阶段（人）", "人", metric="aided_migrant_senior"),
        Item("05C$", "发放助学款（万元）", "万元", metric="paid_migrant_senior"),
        Item("05D", "大专以上（人）", "人", metric="aided_migrant_university"),
        Item("05D$", "发放助学款（万元）", "万元", metric="paid_migrant_university"),
        Item("06A", "举办或联合开展暑假托管班（个）", "个", input="06A", group="（06）"),
        Item("06A+", "照顾职工子女（人）", "人", input="06A+"),
        Item("07A", "联系单位（家）", "家", metric="post_employers", group="（07）"),
        Item("07A+", "为在读困难职工子女提供勤工俭学和社会实践岗位（个）", "个", metric="posts"),
    ),
)

# (code, label, unit, group, metric): metric None = typed in (no record holds it).
_EMPLOYMENT_QINGPU: tuple[tuple[str, str, Unit, str, str | None], ...] = (
    ("01B", "其中：应届毕业生（人）", "人", "", "graduates_fresh"),
    ("01C", "往届毕业生（人）", "人", "", "graduates_previous"),
    ("01D", "已自谋职业（人）", "人", "", "employed_self"),
    ("01E", "需要就业帮扶（人）", "人", "", "needs_help"),
    (
        "02A",
        "共为困难职工家庭高校毕业生提供实习见习机会（人次）",
        "人次",
        "（02）",
        "help_internship",
    ),
    ("03A", "向困难职工家庭高校毕业生提供就业技能培训（人次）", "人次", "（03）", "help_training"),
    ("03B", "帮助通过职业技能鉴定获得相应职业资格证书（人次）", "人次", "", "help_certificate"),
    ("04A", "共举办就业招聘会等就业服务系列活动（场）", "场", "（04）", None),
    ("04B", "提供适合高校毕业生的就业岗位（个）", "个", "", None),
    (
        "05A",
        "通过国有大中型企业、劳模企业、社会爱心企业及政府公益性岗位等为困难职工家庭高校毕业生提供就业岗位（个）",
        "个",
        "（05）",
        None,
    ),
    (
        "06A",
        "共为困难职工家庭高校毕业生提供创业指导（人次）",
        "人次",
        "（06）",
        "help_startup_guidance",
    ),
    ("06B", "提供创业培训（人次）", "人次", "", "help_startup_training"),
    ("06C", "提供小额担保贷款（人次）", "人次", "", "help_loan"),
    ("06D", "提供小额担保贷款（元）", "元", "", "help_loan_yuan"),
    (
        "07A",
        "共帮助落实对困难职工家庭高校毕业生的就业扶持政策（人次）",
        "人次",
        "（07）",
        "help_policy",
    ),
    (
        "08A",
        "共实际帮助困难职工家庭高校毕业生实现就业（人次）",
        "人次",
        "（08）",
        "employed_helped",
    ),
    ("09A", "共资助困难职工家庭高校毕业生求职（人次）", "人次", "（09）", "help_subsidy"),
    ("09B", "发放求职补贴（万元）", "万元", "", "help_subsidy_wan"),
    (
        "10A",
        "在本地就读的尚未签约就业的应届困难职工家庭高校毕业生（含本地和外地生源学生）（人）",
        "人",
        "（10）",
        "fresh_local_unplaced",
    ),
    ("11A", "往届未就业的困难职工家庭高校毕业生（人）", "人", "（11）", "previous_unplaced"),
)

QINGPU_2017_EMPLOYMENT = Table(
    key="qingpu_2017_employment",
    title="2017年工会阳光就业行动情况统计表",
    source="青浦区总工会 2017 附件1",
    columns=("编号", "项目", "数量"),
    note=(
        "阳光就业的数字由就业记录（登记、帮扶、去向）统计；04A、04B、05A（招聘会场次与提供的"
        "岗位数）没有记录来源，取自各单位随统计表报送的数据（figures）。"
    ),
    items=(
        Item(
            "01A",
            "本地区、本系统工会共有困难职工家庭高校毕业生（人）",
            "人",
            sum_of=("01B", "01C"),
            group="（01）",
        ),
        *(
            Item(code, label, unit, metric=metric, group=group)
            if metric is not None
            else Item(code, label, unit, input=f"employment.{code}", group=group)
            for code, label, unit, group, metric in _EMPLOYMENT_QINGPU
        ),
    ),
)

DALIAN_2011 = Table(
    key="dalian_2011",
    title="2011年“金秋助学”和“阳光就业”行动情况统计表",
    source="大连市总工会 2011 附件3",
    columns=("编号", "项目", "数量"),
    note=(
        "填报说明：数据统计截止日期为2011年8月31日。06–16 项由就业记录统计；09A、09A+、10A"
        "（招聘会场次与提供的岗位数）没有记录来源，取自各单位随统计表报送的数据（figures）。"
    ),
    items=(
        *_RAISED,
        Item(
            "03A",
            "助学活动中共资助困难职工和困难农民工子女（人）",
            "人",
            sum_of=("03B", "03C", "03D"),
            group="（03）",
        ),
        Item("03B", "其中小学和初中阶段（人）", "人", metric="aided_basic"),
        Item("03C", "其中高中和中等职业教育阶段（人）", "人", metric="aided_senior"),
        Item("03D", "其中大专以上（人）", "人", metric="aided_university"),
        Item(
            "04A",
            "助学活动中共资助困难农民工子女（人）",
            "人",
            sum_of=("04B", "04C", "04D"),
            group="（04）",
        ),
        Item("04A$", "共发放助学款（万元）", "万元", sum_of=("04B$", "04C$", "04D$")),
        Item("04B", "其中小学和初中阶段（人）", "人", metric="aided_migrant_basic"),
        Item("04B$", "发放助学款（万元）", "万元", metric="paid_migrant_basic"),
        Item("04C", "其中高中和中等职业教育阶段（人）", "人", metric="aided_migrant_senior"),
        Item("04C$", "发放助学款（万元）", "万元", metric="paid_migrant_senior"),
        Item("04D", "大专以上（人）", "人", metric="aided_migrant_university"),
        Item("04D$", "发放助学款（万元）", "万元", metric="paid_migrant_university"),
        Item(
            "05A",
            "助学活动中共资助困难单亲女职工子女（人）",
            "人",
            metric="aided_single_mother",
            group="（05）",
        ),
        Item("05A$", "共发放助学款（万元）", "万元", metric="paid_single_mother"),
        Item(
            "06A",
            "共有困难职工家庭高校毕业生（人）",
            "人",
            sum_of=("06B", "06C"),
            group="（06）",
        ),
        Item("06B", "其中应届毕业生（人）", "人", metric="graduates_fresh"),
        Item("06C", "其中往届毕业生（人）", "人", metric="graduates_previous"),
        Item(
            "07A",
            "共为困难职工家庭高校毕业生提供实习见习机会（人次）",
            "人次",
            metric="help_internship",
            group="（07）",
        ),
        Item(
            "08A",
            "向困难职工家庭高校毕业生提供就业技能培训（人次）",
            "人次",
            metric="help_training",
            group="（08）",
        ),
        Item(
            "08B",
            "帮助通过职业技能鉴定获得相应职业资格证书（人次）",
            "人次",
            metric="help_certificate",
        ),
        Item(
            "09A",
            "共举办就业招聘会等就业服务系列活动（场）",
            "场",
            input="employment.09A",
            group="（09）",
        ),
        Item("09A+", "提供适合高校毕业生的就业岗位（个）", "个", input="employment.09A+"),
        Item(
            "10A",
            "运用国有大中型企业、劳模企业、社会爱心企业及政府公益性岗位等资源，为困难职工家庭高校毕业生提供就业岗位（个）",
            "个",
            input="employment.10A",
            group="（10）",
        ),
        Item(
            "11A",
            "共为困难职工家庭高校毕业生提供创业指导（人次）",
            "人次",
            metric="help_startup_guidance",
            group="（11）",
        ),
        Item("11B", "提供创业培训（人次）", "人次", metric="help_startup_training"),
        Item("11C", "提供小额担保贷款（人次）", "人次", metric="help_loan"),
        Item("11C$", "提供小额担保贷款（元）", "元", metric="help_loan_yuan"),
        Item(
            "12A",
            "共帮助落实对困难职工家庭高校毕业生的就业扶持政策（人次）",
            "人次",
            metric="help_policy",
            group="（12）",
        ),
        Item(
            "13A",
            "共帮助困难职工家庭高校毕业生实现就业（人次）",
            "人次",
            metric="employed_helped",
            group="（13）",
        ),
        Item(
            "14A",
            "共资助困难职工家庭高校毕业生（人次）",
            "人次",
            metric="help_subsidy",
            group="（14）",
        ),
        Item("14B", "发放求职补贴（万元）", "万元", metric="help_subsidy_wan"),
        Item(
            "15A",
            "在本地就读的尚未签约就业的应届困难职工家庭高校毕业生（含本地和外地生源学生）（人）",
            "人",
            metric="fresh_local_unplaced",
            group="（15）",
        ),
        Item(
            "16A",
            "往届未就业的困难职工家庭高校毕业生（人）",
            "人",
            metric="previous_unplaced",
            group="（16）",
        ),
    ),
)

# Anhui 2023 (Bozhou's 附件7–9). The notice prints only the three titles; the items below are
# a local decision: 附件7 from its standards paragraph (三) — the demand of the archived
# families' children, of non-archived university students (≤2000元/人) and of children in
# special education —, filed with the `demand_summary` report its 7/14 deadline waits for;
# 附件8 and 附件9 in the national template's items, as Qingpu 2017 and Dalian 2011 print them.
ANHUI_2023_DEMAND = Table(
    key="anhui_2023_demand",
    title="2023年安徽省工会金秋助学活动需求汇总表",
    source="亳州市总工会 2023 附件7",
    columns=("编号", "项目", "数量"),
    note="各县区总工会根据摸底调查情况，统一汇总形成金秋助学资金需求情况汇总表，并于7月14日前上报。"
    "（通知只列表名，项目按通知第（三）条的资助对象设定：本地决定。）",
    items=(
        Item(
            "D",
            "需资助学生合计（人）",
            "人",
            sum_of=("D1", "D2", "D3"),
            group="（01）",
        ),
        Item(
            "D$",
            "需求资金合计（万元）",
            "万元",
            sum_of=("D1$", "D2$", "D3$"),
        ),
        Item(
            "D1",
            "符合建档条件的困难职工家庭子女（人）",
            "人",
            input="demand.D1",
            kind="demand_summary",
            group="（02）",
        ),
        Item("D1$", "需求资金（万元）", "万元", input="demand.D1$", kind="demand_summary"),
        Item(
            "D2",
            "不符合建档条件的困难职工家庭高校在读学生（人）",
            "人",
            input="demand.D2",
            kind="demand_summary",
            group="（03）",
        ),
        Item(
            "D2$",
            "需求资金（万元，不超过2000元/人）",
            "万元",
            input="demand.D2$",
            kind="demand_summary",
        ),
        Item(
            "D3",
            "接受特殊教育的残疾儿童（人）",
            "人",
            input="demand.D3",
            kind="demand_summary",
            group="（04）",
        ),
        Item(
            "D3$",
            "需求资金（万元，不超过2000元/人）",
            "万元",
            input="demand.D3$",
            kind="demand_summary",
        ),
    ),
)

ANHUI_2023_AID = Table(
    key="anhui_2023_aid",
    title="2023年安徽省工会金秋助学活动情况统计表",
    source="亳州市总工会 2023 附件8",
    columns=("编号", "项目", "数量"),
    note="（通知只列表名，项目按全国工会金秋助学统计表的口径：本地决定。）",
    items=(
        *_RAISED,
        Item(
            "03A",
            "助学活动中共资助困难职工和困难农民工子女（人）",
            "人",
            sum_of=("03B", "03C", "03D"),
            group="（03）",
        ),
        Item("03B", "其中小学和初中阶段（人）", "人", metric="aided_basic"),
        Item("03C", "其中高中和中等职业教育阶段（人）", "人", metric="aided_senior"),
        Item("03D", "其中大专以上（人）", "人", metric="aided_university"),
        Item(
            "04A",
            "助学活动中共资助困难农民工子女（人）",
            "人",
            sum_of=("04B", "04C", "04D"),
            group="（04）",
        ),
        Item("04A$", "共发放助学款（万元）", "万元", sum_of=("04B$", "04C$", "04D$")),
        Item("04B", "其中小学和初中阶段（人）", "人", metric="aided_migrant_basic"),
        Item("04B$", "发放助学款（万元）", "万元", metric="paid_migrant_basic"),
        Item("04C", "其中高中和中等职业教育阶段（人）", "人", metric="aided_migrant_senior"),
        Item("04C$", "发放助学款（万元）", "万元", metric="paid_migrant_senior"),
        Item("04D", "大专以上（人）", "人", metric="aided_migrant_university"),
        Item("04D$", "发放助学款（万元）", "万元", metric="paid_migrant_university"),
    ),
)

ANHUI_2023_EMPLOYMENT = Table(
    key="anhui_2023_employment",
    title="2023年安徽省困难职工家庭高校毕业生阳光就业暖心行动统计表",
    source="亳州市总工会 2023 附件9",
    columns=("编号", "项目", "数量"),
    note="项目与青浦阳光就业统计表相同，由就业记录统计；没有记录来源的项目取自各单位随统计表报送的数据"
    "（figures）。（通知只列表名，项目按全国工会阳光就业统计表的口径：本地决定。）",
    items=QINGPU_2017_EMPLOYMENT.items,
)

TABLES: tuple[Table, ...] = (
    WEIHAI_2024_A1,
    WEIHAI_2024_A2,
    QINGPU_2017_AID,
    QINGPU_2017_EMPLOYMENT,
    DALIAN_2011,
    ANHUI_2023_DEMAND,
    ANHUI_2023_AID,
    ANHUI_2023_EMPLOYMENT,
)
BY_KEY = {t.key: t for t in TABLES}


def check_campaign_tables(spec: CampaignFile) -> None:
    """The tables a campaign file names must be defined here: checked by the faces that load
    a campaign (campaigns/ sits below statistics/ and cannot ask itself)."""
    if spec.statistics is None:
        return
    problems: list[dict[str, Any]] = [
        {
            "field": f"statistics.tables.{i}",
            "code": "unknown_table",
            "message": f"未知的统计表 {key}，可选：{', '.join(BY_KEY)}",
        }
        for i, key in enumerate(spec.statistics.tables)
        if key not in BY_KEY
    ]
    if problems:
        raise ValidationFailed(f"输入有误：{problems[0]['message']}", problems)
