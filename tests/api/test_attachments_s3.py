"""Documents over HTTP with JINQIU_ATTACHMENTS_STORE=s3, on both databases: the routes choose the
store from the settings (`store_of`). The store is moto's S3 emulator over HTTP
(tests/workflow/attachments/test_s3_store.py: no S3 runs here). A store that cannot keep the
bytes is a 503 naming it, and leaves no attachment row; unsafe settings are named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jinqiu.api.app import create_app
from jinqiu.states import CaseState
from jinqiu.workflow.attachments.s3 import PREFIX
from tests.api.conftest import World
from tests.api.test_attachments import CLERK, PDF, REVIEWER, stored
from tests.factories import case_in
from tests.workflow.attachments.test_s3_store import (  # noqa: F401  (the module's server)
    BUCKET,
    endpoint,
    keys,
    raw_client,
    settings,
)


@pytest.fixture
def bucket(endpoint: str) -> Iterator[str]:  # noqa: F811
    client = raw_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield BUCKET
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def client_with(world: World, endpoint: str, **changes: Any) -> TestClient:  # noqa: F811
    chosen = settings(
        endpoint,
        secret_key=world.settings.secret_key,
        token_minutes=world.settings.token_minutes,
        **changes,
    )
    return TestClient(create_app(engine=world.engine, clock=world.clock, settings=chosen))


def post(client: TestClient, world: World, case_id: int) -> Any:
    return client.post(
        f"/api/cases/{case_id}/attachments",
        files={"file": ("录取通知书.pdf", PDF, "application/pdf")},
        data={"kind": "admission_notice"},
        headers=world.as_(CLERK),
    )


def test_an_upload_is_kept_in_the_bucket_and_downloaded(
    world: World,
    endpoint: str,  # noqa: F811
    bucket: str,
) -> None:
    case_id = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    with client_with(world, endpoint) as client:
        created = post(client, world, case_id)
        assert created.status_code == 201, created.text
        digest = created.json()["sha256"]
        assert keys(endpoint) == [f"{PREFIX}{digest[:2]}/{digest}"]
        got = client.get(
            f"/api/cases/{case_id}/attachments/{created.json()['id']}",
            headers=world.as_(REVIEWER),
        )
    assert got.status_code == 200 and got.content == PDF


def test_a_store_that_cannot_keep_it_is_a_503_and_no_row(
    world: World,
    endpoint: str,  # noqa: F811
) -> None:
    """No bucket: the store refuses; the request is rolled back."""
    case_id = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    with client_with(world, endpoint) as client:
        refused = post(client, world, case_id)
    assert refused.status_code == 503
    assert refused.json()["code"] == "attachments_store_unavailable"
    assert "附件对象存储暂不可用" in refused.json()["message"]
    assert stored(world, case_id) == 0


def test_unsafe_settings_are_a_503_naming_them(world: World, endpoint: str) -> None:  # noqa: F811
    case_id = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    with client_with(world, endpoint, s3_allow_http=False) as client:
        refused = post(client, world, case_id)
    assert refused.status_code == 503
    body = refused.json()
    assert body["code"] == "attachments_not_configured"
    assert "JINQIU_S3_ENDPOINT_URL" in body["message"]
    assert stored(world, case_id) == 0
