"""Sign-in: OAuth2 password flow → a signed bearer token. Repeated failures → 429."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from jinqiu.api.deps import Conn, CurrentActor, ServicesDep, api_router
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody, Unauthorized
from jinqiu.api.http.schemas import TokenOut
from jinqiu.api.security import client_address, issue_token, sign_in, throttle_keys
from jinqiu.workflow.users.service import revoke_sessions

router = api_router(prefix="/api/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenOut,
    responses={
        400: {"model": ErrorBody},
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody},
    },
)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, svc: ServicesDep
) -> TokenOut:
    now = svc.clock.now()
    keys = throttle_keys(form.username, client_address(request, svc.settings))
    generation = sign_in(svc.engine, form.username, form.password, keys, now)
    if generation is None:
        raise Unauthorized("用户名或密码错误")
    return TokenOut(
        access_token=issue_token(svc.settings, form.username, now, generation),
        expires_in=svc.settings.token_minutes * 60,
    )


@router.post("/logout", status_code=204, responses=ERROR_RESPONSES)
def logout(actor: CurrentActor, conn: Conn) -> Response:
    """Signs the caller out everywhere: every token and page cookie they hold stops working."""
    revoke_sessions(conn, actor.username)
    return Response(status_code=204)
