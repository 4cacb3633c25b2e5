"""Security headers and what a link can make a page say (issue 8, #18), and /docs without a CDN
(#19). Every response carries a Content-Security-Policy without inline script, X-Frame-Options
DENY, X-Content-Type-Options nosniff and a Referrer-Policy; pages and API answers with personal
data are never stored by a cache. ?flash= and ?refusal= show only what the server itself signed
for the signed-in user, shortly before."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.conftest import World, username
from tests.api.conftest import world as world  # the HTTP fixture, on both databases
from tests.factories import new_case
from tests.security.test_bounds import CLERK, MANAGER, sign_in_page

ATTACK = "您的账户已冻结，请拨打 400-000-0000 并提供银行卡号"
PAGES = ["/dashboard", "/queue", "/help/machine"]


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "default-src" in directives and "'self'" in directives["default-src"], csp
    script = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") in {
        "no-referrer",
        "same-origin",
        "strict-origin-when-cross-origin",
    }


def assert_not_stored(response: httpx.Response) -> None:
    assert "no-store" in response.headers.get("cache-control", ""), dict(response.headers)


def no_inline_code(html: str) -> None:
    """What a CSP without 'unsafe-inline' would block: inline scripts, handlers, style attributes."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "style attribute"
    assert "<style" not in html, "inline <style>"
    assert "javascript:" not in html


class TestHeaders:
    def test_signed_in_pages_carry_the_headers_are_not_stored_and_have_no_inline_code(
        self, world: World
    ) -> None:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        sign_in_page(world, MANAGER)
        for path in [*PAGES, f"/cases/{case_id}", "/dashboard?partial=1"]:
            response = world.client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert_security_headers(response)
            assert_not_stored(response)
            no_inline_code(response.text)

    def test_the_login_page_and_errors_carry_the_headers(self, world: World) -> None:
        for response in (
            world.client.get("/login"),
            world.client.get("/nope", headers={"Accept": "text/html"}),
            world.client.get("/api/nope"),
            world.client.post("/api/cases", json={}),
        ):
            assert_security_headers(response)
        no_inline_code(world.client.get("/login").text)

    def test_api_answers_with_case_data_are_not_stored(self, world: World) -> None:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        auth = world.as_(username("finance", "WH-HC-001"))
        for path in (
            f"/api/cases/{case_id}",
            "/api/cases",
            f"/api/cases/{case_id}/history",
            "/api/users/me",
        ):
            response = world.client.get(path, headers=auth)
            assert response.status_code == 200, (path, response.text)
            assert_security_headers(response)
            assert_not_stored(response)

    def test_static_assets_carry_the_headers(self, world: World) -> None:
        response = world.client.get("/static/app.js")
        assert response.status_code == 200
        assert response.headers.get("x-content-type-options") == "nosniff"


def query_of(location: str, name: str) -> str:
    return parse_qs(urlsplit(location).query)[name][0]


class TestMessagesInLinks:
    @pytest.mark.parametrize("param", ["flash", "refusal"])
    def test_attacker_text_in_a_link_is_not_shown_on_the_case_page(
        self, world: World, param: str
    ) -> None:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        sign_in_page(world, CLERK)
        page = world.client.get(f"/cases/{case_id}", params={param: ATTACK})
        assert page.status_code == 200
        assert ATTACK not in page.text and "400-000-0000" not in page.text

    def test_attacker_text_in_a_link_is_not_shown_on_the_queue(self, world: World) -> None:
        sign_in_page(world, CLERK)
        page = world.client.get("/queue", params={"flash": ATTACK})
        assert page.status_code == 200 and "400-000-0000" not in page.text

    def test_the_servers_own_refusal_is_shown_in_words(self, world: World) -> None:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        csrf = sign_in_page(world, CLERK)
        # A clerk may not verify: the engine's refusal travels in the redirect, signed.
        response = world.client.post(
            f"/cases/{case_id}/events",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "verify", "version": "1"},
        )
        assert response.status_code == 303
        token = query_of(response.headers["location"], "refusal")
        page = world.client.get(response.headers["location"])
        shown = re.search(r'data-testid="refusal">(.*?)</div>', page.text, re.S)
        assert shown is not None and "未能办理" in shown.group(1), page.text
        assert token not in shown.group(1)  # words, not the signed value

    def test_the_servers_own_flash_is_shown_and_only_to_its_user_and_only_shortly(
        self, world: World
    ) -> None:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        csrf = sign_in_page(world, CLERK)
        response = world.client.post(
            "/queue/bulk",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "submit", "cases": [f"{case_id}:1"]},
        )
        assert response.status_code == 303
        location = response.headers["location"]
        assert "已提交 1 件" in world.client.get(location).text
        sign_in_page(world, username("clerk", "WH-HC-002"))  # another user, same link
        assert "已提交 1 件" not in world.client.get(location).text
        sign_in_page(world, CLERK)
        world.clock.advance(dt.timedelta(hours=1))
        assert "已提交 1 件" not in world.client.get(location).text


class TestDocs:
    def test_docs_reference_no_external_host_and_load_their_assets_from_static(
        self, world: World
    ) -> None:
        docs = world.client.get("/docs")
        assert docs.status_code == 200
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", docs.text), docs.text
        assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", docs.text)
        scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", docs.text)
        assert scripts and assets, docs.text
        for url in assets:
            assert url.startswith("/static/"), url
            loaded = world.client.get(url)
            assert loaded.status_code == 200 and loaded.content, url
        no_inline_code(docs.text)
        assert_security_headers(docs)
        bundle = world.client.get(next(u for u in scripts if "bundle" in u))
        assert b"SwaggerUIBundle" in bundle.content
        assert world.client.get("/openapi.json").json()["info"]["title"]

    def test_the_docs_initialiser_points_at_the_local_openapi_without_the_online_validator(
        self, world: World
    ) -> None:
        docs = world.client.get("/docs")
        init = [
            u for u in re.findall(r"<script[^>]*src=\"([^\"]+)\"", docs.text) if "bundle" not in u
        ]
        assert init, docs.text
        text = world.client.get(init[0]).text
        assert "/openapi.json" in text and "validatorUrl: null" in text
        assert not re.search(r"https?://", text)

    def test_redoc_which_needs_a_cdn_is_not_served(self, world: World) -> None:
        assert world.client.get("/redoc").status_code == 404


TEMPLATES = Path(__file__).parents[2] / "api" / "pages" / "templates"
INLINE = re.compile(r"<[^>]*\s(on[a-z]+)\s*=|<script(?![^>]*\ssrc=)[^>]*>|\sstyle\s*=", re.I)


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_no_template_has_inline_script_or_style_the_policy_would_block(template: Path) -> None:
    """The Content-Security-Policy allows script and style from /static only: an `onchange=`
    in a template (three campaign pickers had one) silently does nothing in the browser."""
    found = [m.group(0)[:60] for m in INLINE.finditer(template.read_text(encoding="utf-8"))]
    assert found == [], f"{template.name}: {found}"
