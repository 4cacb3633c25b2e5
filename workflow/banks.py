"""Issuer identification numbers (the first six digits of a card, 发卡行识别码) → the bank, for
the 开户行 column of the bank file and to refuse a number no bank issued.

Where it comes from: the debit-card (借记卡) BINs these banks print on their UnionPay cards, as
listed in 中国银联's BIN table (银联卡发卡机构识别码) and on the banks' own pages; only debit
cards, which is what 助学金 are paid to. A card of a bank missing here is refused with a reason
naming the prefix: add its BIN here (a line of data) once the bank is confirmed."""

from __future__ import annotations

SOURCE = "中国银联 银联卡发卡机构识别码（BIN）表，借记卡部分；各行官网公布的借记卡卡号前缀"

ISSUERS: dict[str, str] = {
    # 中国工商银行
    "622202": "中国工商银行",
    "622208": "中国工商银行",
    "621226": "中国工商银行",
    "621225": "中国工商银行",
    "620058": "中国工商银行",
    # 中国农业银行
    "622848": "中国农业银行",
    "622845": "中国农业银行",
    "622846": "中国农业银行",
    "622849": "中国农业银行",
    # 中国银行
    "621661": "中国银行",
    "621663": "中国银行",
    "621785": "中国银行",
    "456351": "中国银行",
    # 中国建设银行
    "621700": "中国建设银行",
    "622700": "中国建设银行",
    "436742": "中国建设银行",
    "622280": "中国建设银行",
    # 交通银行
    "622262": "交通银行",
    "622260": "交通银行",
    # 招商银行
    "622588": "招商银行",
    "621483": "招商银行",
    "621286": "招商银行",
    # 中国邮政储蓄银行
    "621799": "中国邮政储蓄银行",
    "622188": "中国邮政储蓄银行",
    "621098": "中国邮政储蓄银行",
    # 威海市商业银行 (the demo's city)
    "623102": "威海市商业银行",
}


def bank_of(number: str) -> str | None:
    """The bank that issued the card, by its first six digits (None: not in the table)."""
    return ISSUERS.get(number[:6])
