"""The administration pages on both databases, as a browser sends them (forms, a session cookie,
Accept: text/html): an admin of the district WH-HC creates a unit and a user under it, the new
user signs in, a locked user is unlocked; a manager loads a campaign file. Each form refused
comes back with the problem beside its field (or, for a campaign file, every problem listed) and
the database exactly as before; a role without the permission gets the error page (403), an
object outside the subtree the 404 page, a stale CSRF token the error page — all HTML."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import User
from tests.api.conftest import PASSWORD, World, username
from tests.api.test_publicity_pages import csrf_of
from tests.factories import WEIHAI
from tests.security.test_request_boundary import failing_commit, listening

unit_t = Unit.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
ADMIN = username("admin", "WH-HC")
HTML = {"accept": "text/html,application/xhtml+xml"}


def browser(world: World, who: str) -> TestClient:
    """A signed-in page client that asks for HTML, as a browser does."""
    client = TestClient(world.client.app, raise_server_exceptions=False, headers=HTML)
    signed = client.post(
        "/login", data={"username": who, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    return client


def everything(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table (small worlds): what "nothing written" is compared on."""
    with engine.connect() as conn:
        return {
            t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t)))
            for t in metadata.sorted_tables
        }


def error_page(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.text
    assert "无法完成" in response.text and words in response.text, response.text


def field_error(html: str, field: str) -> str:
    """The message shown beside `field`, or "" when there is none."""
    marker = f'data-field="{field}">'
    if marker not in html:
        return ""
    return html.split(marker, 1)[1].split("<", 1)[0]


# -- units ------------------------------------------------------------------------------------


def test_an_admin_creates_a_unit_in_the_subtree(world: World) -> None:
    admin = browser(world, ADMIN)
    index = admin.get("/admin/units")
    assert index.status_code == 200
    listed = index.text.split('data-testid="units"', 1)[1]
    assert 'data-code="WH-HC-001"' in listed and 'data-code="WH-WD"' not in listed
    assert 'href="/admin/units"' in index.text and 'href="/admin/users"' in index.text
    made = admin.post(
        "/admin/units",
        data={
            "csrf_token": csrf_of(index.text),
            "code": "WH-HC-010",
            "name": "环翠区某街道工会",
            "level": "street",
            "parent": "WH-HC",
            "contact_name": "王老师",
            "contact_email": "hc010@example.org",
        },
    )
    assert made.status_code == 200 and "已创建单位 WH-HC-010" in made.text, made.text
    assert 'data-code="WH-HC-010"' in made.text
    with world.engine.connect() as conn:
        row = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC-010")).one()
    assert (row.path, row.level, row.contact_email) == (
        "/WH/WH-HC/WH-HC-010/",
        "street",
        "hc010@example.org",
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"contact_email": "not-an-address"}, "contact_email", "邮箱格式不正确"),
        ({"code": "环翠 10"}, "code", "单位代码只能包含"),
        ({"name": ""}, "name", "必填项缺失"),
        ({"level": "galaxy"}, "level", "取值不在允许范围内"),
        ({"level": "district"}, "level", "单位层级须低于上级单位"),  # a district under a district
        ({"parent": ""}, "parent", "须指定上级单位"),
        ({"parent": "WH-WD"}, "parent", "上级单位不存在"),  # outside the subtree: as unknown
        ({"parent": "NOWHERE"}, "parent", "上级单位不存在"),
        ({"code": "WH-HC-001"}, "code", "已存在"),
    ],
)
def test_a_refused_unit_is_shown_beside_its_field_and_nothing_is_written(
    world: World, changes: dict[str, str], field: str, message: str
) -> None:
    admin = browser(world, ADMIN)
    csrf = csrf_of(admin.get("/admin/units").text)
    form = {
        "csrf_token": csrf,
        "code": "WH-HC-011",
        "name": "新单位",
        "level": "grassroots",
        "parent": "WH-HC",
        "contact_email": "ok@example.org",
        **changes,
    }
    before = everything(world.engine)
    refused = admin.post("/admin/units", data=form)
    assert refused.status_code == 422, refused.text
    assert message in field_error(refused.text, field), refused.text
    assert f'value="{form["name"]}"' in refused.text  # what was typed is kept
    assert everything(world.engine) == before


# -- users ------------------------------------------------------------------------------------


def test_an_admin_creates_a_user_who_then_signs_in(world: World) -> None:
    admin = browser(world, ADMIN)
    index = admin.get("/admin/users")
    assert index.status_code == 200
    assert 'data-username="clerk.wh-hc-001"' in index.text
    assert 'data-username="clerk.wh-wd-001"' not in index.text  # another district
    made = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf_of(index.text),
            "username": "li.hong",
            "display_name": "李红",
            "unit": "WH-HC-001",
            "roles": ["clerk", "reviewer"],
            "password": "Autumn-2024-ok",
            "password_again": "Autumn-2024-ok",
        },
    )
    assert made.status_code == 200 and "已创建用户 li.hong" in made.text, made.text
    assert "Autumn-2024-ok" not in made.text and "Autumn-2024-ok" not in str(made.url)
    row = made.text.split('data-username="li.hong"', 1)[1].split("</tr>", 1)[0]
    assert "基层经办、审核" in row and "WH-HC-001" in row
    newcomer = TestClient(world.client.app, raise_server_exceptions=False, headers=HTML)
    signed = newcomer.post(
        "/login",
        data={"username": "li.hong", "password": "Autumn-2024-ok"},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    assert newcomer.get("/queue").status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password": "short", "password_again": "short"}, "password", "不能为空"),
        ({"password_again": "Autumn-2024-no"}, "password_again", "两次输入的密码不一致"),
        ({"roles": []}, "roles", "至少需要一项"),
        ({"roles": ["scheduler"]}, "roles", "不能分配给用户"),
        ({"username": "李红"}, "username", "格式不正确"),
        ({"unit": "WH-WD-001"}, "unit", "单位不存在"),  # outside the subtree: as unknown
        ({"username": "clerk.wh-hc-002"}, "username", "已存在"),
    ],
)
def test_a_refused_user_is_shown_beside_its_field_and_nothing_is_written(
    world: World, changes: dict[str, Any], field: str, message: str
) -> None:
    admin = browser(world, ADMIN)
    form = {
        "csrf_token": csrf_of(admin.get("/admin/users").text),
        "username": "li.hong",
        "display_name": "李红",
        "unit": "WH-HC-001",
        "roles": ["clerk"],
        "password": "Autumn-2024-ok",
        "password_again": "Autumn-2024-ok",
        **changes,
    }
    before = everything(world.engine)
    refused = admin.post("/admin/users", data=form)
    assert refused.status_code == 422, refused.text
    shown = field_error(refused.text, field)
    assert message in shown, refused.text
    assert "Autumn-2024" not in refused.text  # a password is never sent back
    assert everything(world.engine) == before


def test_an_admin_unlocks_a_locked_user(world: World) -> None:
    locked = username("clerk", "WH-HC-001")
    guesser = TestClient(
        world.client.app, raise_server_exceptions=False, headers=HTML, client=("203.0.113.7", 50000)
    )
    for _ in range(5):
        guesser.post("/login", data={"username": locked, "password": "wrong-password"})
    # The username is locked from every address (the user's own office too).
    anyone = TestClient(world.client.app, raise_server_exceptions=False, headers=HTML)
    refused = anyone.post("/login", data={"username": locked, "password": PASSWORD})
    assert refused.status_code == 429

    admin = browser(world, ADMIN)
    index = admin.get("/admin/users")
    row = index.text.split(f'data-username="{locked}"', 1)[1].split("</tr>", 1)[0]
    assert "已锁定" in row and "解除锁定" in row
    sibling = browser(world, username("admin", "WH-HC-002"))
    csrf = csrf_of(sibling.get("/admin/users").text)
    error_page(
        sibling.post(f"/admin/users/{locked}/unlock", data={"csrf_token": csrf}), 404, locked
    )
    error_page(
        admin.post(f"/admin/users/{locked}/unlock", data={"csrf_token": "stale"}), 400, "表单已过期"
    )
    unknown = admin.post(
        "/admin/users/nobody.here/unlock", data={"csrf_token": csrf_of(index.text)}
    )
    error_page(unknown, 404, "nobody.here")
    assert anyone.post("/login", data={"username": locked, "password": PASSWORD}).status_code == 429

    done = admin.post(f"/admin/users/{locked}/unlock", data={"csrf_token": csrf_of(index.text)})
    assert done.status_code == 200 and f"已解除 {locked} 的登录锁定" in done.text
    signed = anyone.post(
        "/login", data={"username": locked, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303


# -- campaigns --------------------------------------------------------------------------------


def campaign_file(**changes: Any) -> dict[str, Any]:
    """The Weihai file moved to 2025 (a campaign the world does not have yet)."""
    raw: dict[str, Any] = json.loads(WEIHAI.read_text(encoding="utf-8").replace("2024-", "2025-"))
    raw.update({"year": 2025, "name": "2025年度金秋助学活动", **changes})
    return raw


def upload(client: TestClient, content: bytes, name: str = "weihai-2025.json") -> Any:
    csrf = csrf_of(client.get("/admin/campaigns").text)
    return client.post(
        "/admin/campaigns",
        data={"csrf_token": csrf},
        files={"file": (name, content, "application/json")},
    )


def test_a_manager_loads_a_campaign_file_saved_by_chinese_windows(world: World) -> None:
    manager = browser(world, username("manager", "WH"))
    loaded = upload(manager, json.dumps(campaign_file(), ensure_ascii=False).encode("gb18030"))
    assert loaded.status_code == 200 and "已载入活动「2025年度金秋助学活动」" in loaded.text
    listed = loaded.text.split('data-testid="campaigns"', 1)[1]
    assert "2025年度金秋助学活动" in listed and "2024年度" in listed
    assert 'href="/admin/campaigns"' in loaded.text and 'href="/admin/users"' not in loaded.text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (json.dumps(campaign_file(year=1800)).encode(), "year"),
        (json.dumps(campaign_file(phases=[], deadlines="soon")).encode(), "deadlines"),
        (b'{"name": ', "不是有效的 JSON：第1行第10列有误"),
        (json.dumps(campaign_file()).encode("utf-16"), "UTF-16"),
        (
            json.dumps(campaign_file(statistics={"tables": ["x"], "source": "x"})).encode(),
            "未知的统计表",
        ),
        (WEIHAI.read_bytes(), "不能重复创建"),  # the world's own campaign, again
        (b" " * (5 * 1024 * 1024 + 1), "过大"),
    ],
)
def test_a_refused_campaign_file_lists_its_problems_and_writes_nothing(
    world: World, content: bytes, words: str
) -> None:
    manager = browser(world, username("manager", "WH"))
    before = everything(world.engine)
    refused = upload(manager, content)
    assert refused.status_code in (409, 422), refused.text
    assert "未能载入（weihai-2025.json），未写入任何数据" in refused.text, refused.text
    assert words in refused.text.split('data-testid="refusal"', 1)[1], refused.text
    assert everything(world.engine) == before


def test_a_campaign_of_another_subtree_is_refused(world: World) -> None:
    """A district's manager may not load a campaign organised by the city (as the API: 422
    naming the organiser, like an unknown one)."""
    district = browser(world, username("manager", "WH-HC"))
    before = everything(world.engine)
    refused = upload(district, json.dumps(campaign_file()).encode())
    assert refused.status_code == 422 and "主办单位 WH 不存在" in refused.text
    assert everything(world.engine) == before


# -- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/admin/units", {"admin"}),
        ("/admin/users", {"admin"}),
        ("/admin/campaigns", {"admin", "manager"}),
    ],
)
def test_only_the_roles_holding_the_permission_see_and_use_an_admin_page(
    world: World, path: str, allowed: set[str]
) -> None:
    for role in ("clerk", "reviewer", "approver", "finance", "manager", "auditor", "admin"):
        client = browser(world, username(role, "WH-HC"))
        shown = client.get(path)
        nav = client.get("/help/machine").text.split("</nav>", 1)[0]
        if role in allowed:
            assert shown.status_code == 200, (role, shown.text)
            assert f'href="{path}"' in nav, role
            continue
        error_page(shown, 403, "当前角色无权")
        assert f'href="{path}"' not in nav, role
        before = everything(world.engine)
        csrf = csrf_of(client.get("/help/machine").text)
        sent = client.post(path, data={"csrf_token": csrf, "code": "X1", "username": "x.y"})
        error_page(sent, 403, "当前角色无权")
        assert everything(world.engine) == before


def test_a_stale_form_or_no_session_is_refused_without_writing(world: World) -> None:
    admin = browser(world, ADMIN)
    stranger = TestClient(world.client.app, raise_server_exceptions=False, headers=HTML)
    locked = username("clerk", "WH-HC-001")
    forms: list[tuple[str, dict[str, Any], Any]] = [
        ("/admin/units", {"code": "WH-HC-012", "name": "某工会", "level": "grassroots",
                          "parent": "WH-HC"}, None),
        ("/admin/users", {"username": "li.hong", "unit": "WH-HC-001", "roles": ["clerk"],
                          "password": "Autumn-2024-ok", "password_again": "Autumn-2024-ok"}, None),
        ("/admin/campaigns", {}, {"file": ("c.json", json.dumps(campaign_file()).encode())}),
        (f"/admin/users/{locked}/unlock", {}, None),
        (f"/admin/users/{locked}/active", {"active": "0"}, None),
        (f"/admin/users/{locked}/password", {"password": "Winter-2024-ok",
                                              "password_again": "Winter-2024-ok"}, None),
    ]  # fmt: skip
    before = everything(world.engine)
    for path, form, files in forms:
        stale = admin.post(path, data={**form, "csrf_token": "stale"}, files=files)
        error_page(stale, 400, "表单已过期")
        away = stranger.post(
            path, data={**form, "csrf_token": "x"}, files=files, follow_redirects=False
        )
        assert away.status_code == 303 and away.headers["location"].startswith("/login"), path
    assert everything(world.engine) == before
    error_page(admin.get("/admin/units?page=0"), 422, "page")
    manager = browser(world, username("manager", "WH-HC"))
    csrf = csrf_of(manager.get("/help/machine").text)
    error_page(
        manager.post(f"/admin/users/{locked}/unlock", data={"csrf_token": csrf}),
        403,
        "无权管理用户",
    )
    error_page(manager.post("/admin/users/nobody.here/unlock", data={"csrf_token": csrf}), 403, "无权管理用户")  # fmt: skip


def test_a_failed_commit_on_a_page_is_an_error_page_and_stores_nothing(world: World) -> None:
    """The unit of work commits before the answer: a COMMIT that fails answers the 500 page
    (never JSON, never the success redirect) and the unit is not there."""
    admin = browser(world, ADMIN)
    form = {
        "csrf_token": csrf_of(admin.get("/admin/units").text),
        "code": "WH-HC-013",
        "name": "某工会",
        "level": "grassroots",
        "parent": "WH-HC",
    }
    before = everything(world.engine)
    with listening(world.engine, "commit", failing_commit):
        failed = admin.post("/admin/units", data=form, follow_redirects=False)
    error_page(failed, 500, "服务器内部错误")
    assert "DiskFull" not in failed.text and "disk I/O" not in failed.text
    assert everything(world.engine) == before


def test_an_admin_deactivates_reactivates_and_sets_a_new_password(world: World) -> None:
    clerk_name = username("clerk", "WH-HC-001")
    clerk = browser(world, clerk_name)
    admin = browser(world, ADMIN)
    csrf = csrf_of(admin.get("/admin/users").text)
    off = admin.post(f"/admin/users/{clerk_name}/active", data={"csrf_token": csrf, "active": "0"})
    assert f"{clerk_name} 已停用" in off.text
    row = off.text.split(f'data-username="{clerk_name}"', 1)[1].split("</tr>", 1)[0]
    assert "已停用" in row and ">启用<" in row
    away = clerk.get("/queue", follow_redirects=False)  # the clerk's session ended at once
    assert away.status_code == 303 and away.headers["location"].startswith("/login")
    on = admin.post(f"/admin/users/{clerk_name}/active", data={"csrf_token": csrf, "active": "1"})
    assert f"{clerk_name} 已启用" in on.text

    before = everything(world.engine)
    for password, again, words in [
        ("Winter-2024-ok", "Winter-2024-no", "两次输入的密码不一致"),
        ("short", "short", "新密码须为 8 至 200 个字符"),
    ]:
        refused = admin.post(
            f"/admin/users/{clerk_name}/password",
            data={"csrf_token": csrf, "password": password, "password_again": again},
        )
        assert refused.status_code == 200 and words in refused.text, refused.text
        assert 'data-testid="refused"' in refused.text and password not in refused.text
    assert everything(world.engine) == before
    own = admin.post(f"/admin/users/{ADMIN}/active", data={"csrf_token": csrf, "active": "0"})
    assert "不能修改自己的角色或停用自己的账号" in own.text
    assert everything(world.engine) == before

    clerk = browser(world, clerk_name)
    reset = admin.post(
        f"/admin/users/{clerk_name}/password",
        data={"csrf_token": csrf, "password": "Winter-2024-ok", "password_again": "Winter-2024-ok"},
    )
    assert f"已重设 {clerk_name} 的密码" in reset.text and "Winter-2024-ok" not in reset.text
    assert clerk.get("/queue", follow_redirects=False).status_code == 303
    fresh = TestClient(world.client.app, raise_server_exceptions=False, headers=HTML)
    signed = fresh.post(
        "/login",
        data={"username": clerk_name, "password": "Winter-2024-ok"},
        follow_redirects=False,
    )
    assert signed.status_code == 303

    sibling = browser(world, username("admin", "WH-HC-002"))
    their = csrf_of(sibling.get("/admin/users").text)
    for path, form in [
        ("active", {"active": "0"}),
        ("password", {"password": "Winter-2024-x", "password_again": "Winter-2024-x"}),
    ]:
        outside = sibling.post(
            f"/admin/users/{clerk_name}/{path}", data={"csrf_token": their, **form}
        )
        error_page(outside, 404, clerk_name)
    manager = browser(world, username("manager", "WH-HC"))
    mine = csrf_of(manager.get("/help/machine").text)
    gated = manager.post(
        f"/admin/users/{clerk_name}/active", data={"csrf_token": mine, "active": "0"}
    )
    error_page(gated, 403, "无权管理用户")


def test_the_lists_narrow_to_a_unit_of_the_subtree(world: World) -> None:
    admin = browser(world, ADMIN)
    users = admin.get("/admin/users?unit=WH-HC-001").text.split('data-testid="users"', 1)[1]
    assert 'data-username="clerk.wh-hc-001"' in users
    assert 'data-username="clerk.wh-hc"' not in users
    assert 'data-username="clerk.wh-hc-002"' not in users
    units = admin.get("/admin/units?unit=WH-HC-001").text.split('data-testid="units"', 1)[1]
    assert re.findall(r'data-code="([^"]+)"', units) == ["WH-HC-001"]
    for path in ("/admin/users?unit=WH-WD", "/admin/units?unit=WH"):
        error_page(admin.get(path), 404, "不存在")


def test_a_unit_made_meanwhile_by_another_request_is_refused_beside_its_code(
    world: World,
) -> None:
    """Another transaction inserts the same code and commits while the form is being handled:
    on PostgreSQL the form's check saw nothing and its INSERT meets the unique index (a
    Conflict, not a 500); SQLite serialises the writers, so the check sees it. Either way the
    code is refused beside its field and only the other unit exists."""
    admin = browser(world, ADMIN)
    form = {
        "csrf_token": csrf_of(admin.get("/admin/units").text),
        "code": "WH-HC-014",
        "name": "后到的工会",
        "level": "grassroots",
        "parent": "WH-HC",
    }
    with world.engine.connect() as other:
        parent = other.execute(select(unit_t.c.id).where(unit_t.c.code == "WH-HC")).scalar_one()
        other.execute(
            unit_t.insert().values(
                code="WH-HC-014",
                name="先到的工会",
                level="grassroots",
                parent_id=parent,
                path="/WH/WH-HC/WH-HC-014/",
            )
        )
        commit = threading.Timer(1.0, other.commit)
        commit.start()
        refused = admin.post("/admin/units", data=form)
        commit.join()
    assert refused.status_code == 422, refused.text
    assert "WH-HC-014 已存在" in field_error(refused.text, "code")
    with world.engine.connect() as conn:
        names = conn.execute(select(unit_t.c.name).where(unit_t.c.code == "WH-HC-014")).all()
    assert [n for (n,) in names] == ["先到的工会"]


def test_a_user_made_meanwhile_by_another_request_is_refused_beside_the_username(
    world: World,
) -> None:
    """As for units: the same username committed by another transaction meanwhile."""
    admin = browser(world, ADMIN)
    form = {
        "csrf_token": csrf_of(admin.get("/admin/users").text),
        "username": "li.hong",
        "unit": "WH-HC-001",
        "roles": ["clerk"],
        "password": "Autumn-2024-ok",
        "password_again": "Autumn-2024-ok",
    }
    with world.engine.connect() as other:
        unit = other.execute(select(unit_t.c.id).where(unit_t.c.code == "WH-HC-002")).scalar_one()
        other.execute(
            user_t.insert().values(
                username="li.hong",
                password_hash="x",
                display_name="先到的李红",
                unit_id=unit,
                roles=["clerk"],
                is_active=True,
                created_at=world.clock.now(),
            )
        )
        commit = threading.Timer(1.0, other.commit)
        commit.start()
        refused = admin.post("/admin/users", data=form)
        commit.join()
    assert refused.status_code == 422, refused.text
    assert "li.hong 已存在" in field_error(refused.text, "username")
    with world.engine.connect() as conn:
        names = conn.execute(select(user_t.c.display_name).where(user_t.c.username == "li.hong"))
        assert [n for (n,) in names] == ["先到的李红"]
