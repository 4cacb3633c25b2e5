"""Creating users and checking passwords (Argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert, select

from workflow.clock import Clock
from workflow.errors import Conflict
from workflow.units.service import get_unit_by_code
from workflow.users.models import Role, User

user_table = User.__table__  # type: ignore[attr-defined]
_hasher = PasswordHasher()
# Verified against when a username is unknown, so both answers take one Argon2 check.
DUMMY_HASH = _hasher.hash("jinqiu-no-such-user")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=200)
    display_name: str = Field(default="", max_length=100)
    unit: str
    roles: list[Role] = Field(min_length=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(conn: Connection, spec: UserCreate, clock: Clock) -> int:
    if conn.execute(select(user_table.c.id).where(user_table.c.username == spec.username)).first():
        raise Conflict(f"用户名 {spec.username} 已存在", {"field": "username"})
    unit = get_unit_by_code(conn, spec.unit)
    result = conn.execute(
        insert(user_table)
        .values(
            username=spec.username,
            password_hash=hash_password(spec.password),
            display_name=spec.display_name or spec.username,
            unit_id=unit.id,
            roles=sorted({r.value for r in spec.roles}),
            is_active=True,
            created_at=clock.now(),
        )
        .returning(user_table.c.id)
    )
    return int(result.scalar_one())
