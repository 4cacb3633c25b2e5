"""The S3-compatible attachment store (JINQIU_ATTACHMENTS_STORE=s3) against a real HTTP server.

No S3 runs here, so the server is moto's S3 emulator (`moto.server.ThreadedMotoServer`), started
by this module on a free loopback port and spoken to over HTTP by the same boto3 client the
service uses: what is tested is the store's requests and answers, not a mock of them. The
settings checks (https only, no credentials in the address, no default credentials) need no
server. Through the service on both databases: an upload kept in the bucket under its hash, read
back and recorded as a PII read."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from jinqiu.states import CaseState
from jinqiu.workflow.attachments.s3 import (
    PREFIX,
    S3Settings,
    S3Store,
    StoreMisconfigured,
    StoreUnavailable,
)
from jinqiu.workflow.attachments.service import attach, read_attachment
from jinqiu.workflow.attachments.store import FileStore, store_of
from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from tests.factories import actor, case_in, weihai

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
BUCKET = "jinqiu-attachments"
KEY_ID, SECRET = "test-key-id", "test-secret-key"  # the emulator accepts any
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SQLITE = make_url("sqlite:////tmp/unused.db")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def settings(endpoint: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "attachments_store": "s3",
        "s3_endpoint_url": endpoint,
        "s3_bucket": BUCKET,
        "s3_access_key_id": KEY_ID,
        "s3_secret_access_key": SecretStr(SECRET),
        "s3_allow_http": True,  # the emulator speaks plain HTTP on loopback
        **changes,
    }
    return Settings(**values)


def raw_client(endpoint: str) -> Any:
    """A client of the emulator of the test's own, to look behind the store's back."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
    )  # fmt: skip


@pytest.fixture
def store(endpoint: str) -> Iterator[S3Store]:
    client = raw_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    try:
        chosen = store_of(settings(endpoint), SQLITE)
        assert isinstance(chosen, S3Store)
        yield chosen
    finally:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
        client.delete_bucket(Bucket=BUCKET)


def keys(endpoint: str) -> list[str]:
    listed = raw_client(endpoint).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return [item["Key"] for item in listed]


class TestTheStore:
    def test_bytes_are_kept_under_their_hash_and_read_back(
        self, store: S3Store, endpoint: str
    ) -> None:
        digest = store.put(PDF)
        assert digest == hashlib.sha256(PDF).hexdigest()
        assert keys(endpoint) == [f"{PREFIX}{digest[:2]}/{digest}"]
        assert store.get(digest) == PDF

    def test_the_same_bytes_twice_are_one_object(self, store: S3Store, endpoint: str) -> None:
        assert store.put(PDF) == store.put(PDF)
        store.put(PDF + b"other")
        assert len(keys(endpoint)) == 2

    def test_an_object_changed_in_the_bucket_is_never_served(
        self, store: S3Store, endpoint: str
    ) -> None:
        digest = store.put(PDF)
        (key,) = keys(endpoint)
        raw_client(endpoint).put_object(Bucket=BUCKET, Key=key, Body=b"%PDF-1.7 forged")
        with pytest.raises(OSError, match="does not match its hash"):
            store.get(digest)

    def test_a_missing_object_is_the_store_s_error(self, store: S3Store) -> None:
        with pytest.raises(StoreUnavailable) as missing:
            store.get("0" * 64)
        assert missing.value.status == 503 and "未能读取" in missing.value.message

    def test_a_missing_bucket_is_the_store_s_error_naming_no_secret(self, endpoint: str) -> None:
        chosen = store_of(settings(endpoint, s3_bucket="no-such-bucket"), SQLITE)
        with pytest.raises(StoreUnavailable) as refused:
            chosen.put(PDF)
        assert "NoSuchBucket" in refused.value.message
        assert SECRET not in repr(refused.value.body()) and endpoint not in refused.value.message

    def test_a_store_that_does_not_answer_fails_within_its_bounds(self) -> None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(StoreUnavailable):
            store_of(settings(closed), SQLITE).put(PDF)


class TestTheSettings:
    """Checked before anything is contacted; each problem named by its variable."""

    @pytest.mark.parametrize(
        ("endpoint", "named"),
        [
            ("http://s3.example.org", "https://"),
            ("ftp://s3.example.org", "https://"),
            ("https://user:pw@s3.example.org", "用户名或密码"),
            ("https://s3.example.org/bucket?x=1", "协议、主机和端口"),
            ("https://", "主机名"),
            ("https://s3.example.org:99999", "有效的网址"),
        ],
    )
    def test_an_unsafe_endpoint_is_refused(self, endpoint: str, named: str) -> None:
        with pytest.raises(StoreMisconfigured) as refused:
            store_of(settings(endpoint, s3_allow_http=False), SQLITE)
        assert "JINQIU_S3_ENDPOINT_URL" in refused.value.message and named in refused.value.message
        assert refused.value.code == "attachments_not_configured"

    def test_http_only_when_the_operator_allows_it(self) -> None:
        assert S3Settings.of(settings("http://10.0.0.5:9000")).endpoint_url.startswith("http://")

    def test_no_credentials_no_store(self) -> None:
        bare = Settings(attachments_store="s3", s3_endpoint_url="https://s3.example.org",
                        s3_bucket=BUCKET)  # fmt: skip
        with pytest.raises(StoreMisconfigured) as refused:
            store_of(bare, SQLITE)
        assert refused.value.details == [
            "JINQIU_S3_ACCESS_KEY_ID 未设置",
            "JINQIU_S3_SECRET_ACCESS_KEY 未设置",
        ]

    @pytest.mark.parametrize("bucket", ["", "ab", "Upper", "a_b", "-edge"])
    def test_a_bucket_name_s3_would_refuse_is_named(self, bucket: str) -> None:
        with pytest.raises(StoreMisconfigured, match="JINQIU_S3_BUCKET"):
            store_of(settings("https://s3.example.org", s3_bucket=bucket), SQLITE)

    def test_the_secret_never_shows(self) -> None:
        config = S3Settings.of(settings("https://s3.example.org"))
        assert SECRET not in repr(config) and SECRET not in repr(settings("https://x.org"))

    def test_the_filesystem_stays_the_default(self) -> None:
        assert isinstance(store_of(Settings(), SQLITE), FileStore)


def test_an_upload_through_the_service_is_kept_in_the_bucket_and_read_back(
    db: Engine, clock: ManualClock, store: S3Store, endpoint: str
) -> None:
    _tree, campaign = weihai(db, clock)
    case_id = case_in(db, clock, campaign, "WH-HC-001", CaseState.SURVEY)
    with transaction(db) as conn:
        out, new = attach(
            conn, store, case_id=case_id, kind="admission_notice", filename="通知书.pdf",
            content=PDF, actor=actor(conn, "WH-HC-001", "clerk"), clock=clock,
        )  # fmt: skip
    assert new and keys(endpoint) == [f"{PREFIX}{out.sha256[:2]}/{out.sha256}"]
    with transaction(db) as conn:
        _again, content = read_attachment(
            conn, store, case_id=case_id, attachment_id=out.id,
            actor=actor(conn, "WH-HC", "reviewer"), clock=clock, purpose="test",
        )  # fmt: skip
    assert content == PDF
    with db.connect() as conn:
        reads = conn.execute(
            select(func.count()).select_from(pii_t).where(pii_t.c.case_id == case_id)
        ).scalar_one()
    assert reads == 1
