"""Sign-in: OAuth2 password flow → a signed bearer token. Repeated failures → 429."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from jinqiu.api.deps import CurrentActor, ServicesDep
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody, Unauthorized
from jinqiu.api.http.schemas import TokenOut
from jinqiu.api.security import (
    check_throttle,
    clear_failures,
    client_address,
    issue_token,
    record_failure,
    throttle_keys,
)
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.models import User
from jinqiu.workflow.users.service import DUMMY_HASH, password_matches, revoke_sessions

router = APIRouter(prefix="/api/auth", tags=["auth"])
user_t = User.__table__  # type: ignore[attr-defined]


@router.post(
    "/token",
    response_model=TokenOut,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 422: {"model": ErrorBody},
               429: {"model": ErrorBody}},
)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, svc: ServicesDep
) -> TokenOut:
    now = svc.clock.now()
    keys = throttle_keys(form.username, client_address(request, svc.settings))
    with svc.engine.connect() as conn:
        check_throttle(conn, keys, now)
        row = conn.execute(
            select(user_t.c.password_hash, user_t.c.is_active, user_t.c.token_generation)
            .where(user_t.c.username == form.username)
        ).first()
    # Unknown users cost one Argon2 verification too: timing must not tell which names exist.
    known_hash = row.password_hash if row is not None else DUMMY_HASH
    if not password_matches(known_hash, form.password) or row is None or not row.is_active:
        with transaction(svc.engine) as conn:
            record_failure(conn, keys, now)
        raise Unauthorized("用户名或密码错误")
    with transaction(svc.engine) as conn:
        clear_failures(conn, form.username)
    return TokenOut(
        access_token=issue_token(svc.settings, form.username, now, row.token_generation),
        expires_in=svc.settings.token_minutes * 60,
    )


@router.post("/logout", status_code=204, responses=ERROR_RESPONSES)
def logout(actor: CurrentActor, svc: ServicesDep) -> Response:
    """Signs the caller out everywhere: every token and page cookie they hold stops working."""
    with transaction(svc.engine) as conn:
        revoke_sessions(conn, actor.username)
    return Response(status_code=204)
