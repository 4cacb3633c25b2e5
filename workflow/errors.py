"""Typed domain errors. Each carries its stable code, its HTTP status and a Chinese message;
the API maps them to the contract's error body in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinqiu.workflow.masking import masked_data, masked_text


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a guard refuses: a stable code for programs and a Chinese message for people."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        # An error never carries a full identity or card number to whoever reads it.
        message, details = masked_text(message), masked_data(details)
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ItemFailed(DomainError):
    """One item of a bulk event failed unexpectedly (a bug, logged): that item was not handled,
    the others were."""

    code = "internal_error"
    status = 500

    def __init__(self, noun_label: str = "案件") -> None:
        super().__init__(f"服务器内部错误，该{noun_label}未办理")


class NotFound(DomainError):
    code = "not_found"
    status = 404


class InvalidDatabaseUrl(DomainError):
    """The database URL (JINQIU_DATABASE_URL or --database) cannot be read: what is wrong, never
    the URL itself (it may hold a password)."""

    code = "invalid_database_url"

    def __init__(self, reason: str) -> None:
        super().__init__(f"数据库地址（JINQIU_DATABASE_URL 或 --database）无效：{reason}")


class ValidationFailed(DomainError):
    """Bad input; `details` lists {"field", "code", "message"} per problem."""

    code = "validation_error"
    status = 422


class VersionConflict(DomainError):
    code = "version_conflict"
    status = 409


class EventNotAllowed(DomainError):
    code = "event_not_allowed"
    status = 409


class GuardFailed(DomainError):
    code = "guard_failed"
    status = 422

    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__(
            "不满足办理条件：" + "；".join(r.message for r in reasons),
            {"reasons": [r.as_dict() for r in reasons]},
        )
        self.reasons = reasons


class PermissionDenied(DomainError):
    code = "forbidden"
    status = 403


class DuplicateStudent(DomainError):
    code = "duplicate_student"
    status = 409


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    status = 409


class Conflict(DomainError):
    code = "conflict"
    status = 409


class DuplicateCampaign(DomainError):
    """The organizer already runs a campaign of that name and year."""

    code = "duplicate_campaign"
    status = 409


class TooLarge(DomainError):
    """A file or body over its documented limit."""

    code = "too_large"
    status = 413


class FileUnreadable(DomainError):
    """An uploaded spreadsheet that cannot be read as one: not a spreadsheet, damaged or
    truncated, an unknown encoding, a macro-enabled workbook, a zip bomb, no recognisable
    header. `details["reason"]` says which."""

    code = "file_unreadable"
    status = 422


class UnsupportedMediaType(DomainError):
    """An upload whose content (not its name) is none of the accepted types."""

    code = "unsupported_media_type"
    status = 415


class RenewalExists(DomainError):
    """The case was already renewed (续助) into that campaign."""

    code = "renewal_exists"
    status = 409
