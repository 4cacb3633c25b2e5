"""People who sign in: a unit and one or more roles."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class Role(StrEnum):
    CLERK = "clerk"  # 基层经办
    REVIEWER = "reviewer"  # 审核
    APPROVER = "approver"  # 审批
    FINANCE = "finance"  # 财务
    MANAGER = "manager"  # 管理
    AUDITOR = "auditor"  # 经审
    ADMIN = "admin"
    SCHEDULER = "scheduler"  # the service itself (publicity endings, reminders)


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(default="", max_length=100)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    is_active: bool = True
    # Carried by every token and cookie; bumped by a password change, deactivation, a role
    # change and signing out, so every token issued before stops working at once.
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class LoginFailure(SQLModel, table=True):
    """One failed sign-in, keyed by username and by client address; the throttle counts these
    rows in a sliding window, so every `serve` process sees the same count."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, index=True)  # "user:<name>" or "addr:<ip>"
    at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
