"""How personal numbers look to someone without pii.read — defined once for every face (the case
read, the pages, the history, error messages). Pure: no database, no roles.

Identity numbers keep their region and last four (370102********1234), bank cards their last four
(***************3445). Values are recognised by field name (the last segment of a dotted path such
as `worker.bank_card_number`), and in free text (opinions, messages) by their shape."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinqiu.workflow.identity import mask_id_number, problem_with


def mask_card(number: str | None) -> str | None:
    """6222020200112233445 → ***************3445."""
    if not number:
        return number
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


def mask_given_name(name: str) -> str:
    """A name as a publicity list prints it: the surname and the last character, the given name
    between them starred (张小明 → 张*明, 张明 → 张*, 欧阳小明 → 欧**明). Compound surnames are not
    told apart: the second character is starred like a given name's."""
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _mask_id(value: str) -> str:
    return mask_id_number(value)


# Field name → how its value is masked. The case read and the history use the same table.
MASKS: dict[str, Callable[[str], str]] = {
    "id_number": _mask_id,
    "student_id_number": _mask_id,
    "worker_id_number": _mask_id,
    "bank_card_number": lambda v: mask_card(v) or v,
    "card_number": lambda v: mask_card(v) or v,  # a payment batch's row
}

# An identity number (18 characters, may end in X) or a run of 16 to 19 digits (a bank card), not
# inside a longer word or number: what such numbers look like typed into free text. Shorter runs
# are left alone so phone numbers (+8613806301234) and amounts read as the case read shows them.
_NUMBER_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{16,19})(?![0-9A-Za-z])")


def field_name(path: str) -> str:
    """`changes.worker.bank_card_number` → `bank_card_number`."""
    return path.rsplit(".", 1)[-1]


def is_pii_field(path: str) -> bool:
    return field_name(path) in MASKS


def mask_value(path: str, value: Any) -> Any:
    """The value of field `path` as a role without pii.read sees it; nested values (an
    amendment's {"from", "to"}) are masked leaf by leaf."""
    mask = MASKS.get(field_name(path))
    if mask is None or value is None:
        return value
    if isinstance(value, str):
        return mask(value) if value else value
    if isinstance(value, dict):
        return {k: mask_value(path, v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(path, v) for v in value]
    return mask(str(value))  # a number sent where a string belongs is masked all the same


def _mask_match(match: re.Match[str]) -> str:
    number = match.group(1)
    if len(number) == 18 and problem_with(number) is None:
        return mask_id_number(number)
    return mask_card(number) or number


def masked_text(text: str) -> str:
    """Free text with every identity- or card-shaped number in it masked."""
    return _NUMBER_IN_TEXT.sub(_mask_match, text)


def has_number(text: str) -> bool:
    return _NUMBER_IN_TEXT.search(text) is not None


def masked_data(value: Any, path: str = "") -> Any:
    """JSON-like data with every PII field masked by name and numbers in strings masked."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            out[key] = mask_value(inner, item) if is_pii_field(inner) else masked_data(item, inner)
        return out
    if isinstance(value, list):
        return [masked_data(item, path) for item in value]
    if isinstance(value, str):
        return masked_text(value)
    return value
