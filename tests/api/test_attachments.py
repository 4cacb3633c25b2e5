"""Documents of a case over HTTP, on both databases: kept by content, judged by their bytes
(not their names), bounded, scoped like the case, in the case's audit chain, and every read of
one recorded."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

from sqlalchemy import func, select

from jinqiu.states import CaseState
from jinqiu.workflow.attachments.content import MAX_BYTES
from jinqiu.workflow.attachments.models import Attachment
from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.cases.trail import verify_case_chains
from tests.api.conftest import World
from tests.factories import case_in, case_row

attachment_t = Attachment.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
CLERK, SIBLING, REVIEWER = "clerk.wh-hc-001", "clerk.wh-hc-002", "reviewer.wh-hc"
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (width + 1) * min(height, 4))  # rows enough to be a PNG
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def upload(world: World, case_id: int, content: bytes, *, who: str = CLERK, kind: str = "admission_notice",
           name: str = "录取通知书.pdf", media_type: str = "application/pdf"):  # type: ignore[no-untyped-def]  # fmt: skip
    return world.client.post(
        f"/api/cases/{case_id}/attachments",
        files={"file": (name, content, media_type)},
        data={"kind": kind},
        headers=world.as_(who),
    )


def stored(world: World, case_id: int) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(attachment_t)
                .where(attachment_t.c.case_id == case_id)
            ).scalar_one()
        )


def test_a_document_is_attached_listed_in_the_trail_and_kept_once(world: World) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    before = case_row(world.engine, case).version
    response = upload(world, case, PDF)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "admission_notice" and body["kind_label"] == "录取通知书"
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["size"] == len(PDF)
    assert body["media_type"] == "application/pdf" and body["filename"] == "录取通知书.pdf"
    assert case_row(world.engine, case).version == before + 1

    again = upload(world, case, PDF, name="copy.pdf")  # the same bytes as the same kind
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert case_row(world.engine, case).version == before + 1
    image = upload(world, case, jpeg(1200, 1600), kind="identity_card", name="id.jpg",
                   media_type="application/octet-stream")  # fmt: skip
    assert image.status_code == 201, image.text
    assert image.json()["media_type"] == "image/jpeg"

    listed = world.client.get(f"/api/cases/{case}/attachments", headers=world.as_(CLERK))
    assert [a["kind"] for a in listed.json()] == ["admission_notice", "identity_card"]
    history = world.client.get(f"/api/cases/{case}/history", headers=world.as_(CLERK)).json()
    attached = [h for h in history if h["event"] == "attach"]
    assert [h["data"]["kind"] for h in attached] == ["admission_notice", "identity_card"]
    with world.engine.connect() as conn:
        assert list(verify_case_chains(conn)) == []


def test_content_decides_not_the_name_and_refusals_write_nothing(world: World) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    version = case_row(world.engine, case).version
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scan.pdf", b"\x00" * (64 * 1024 * 1024))  # 64 MB in ~64 KB
    refused = {
        "renamed executable": (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, 415, "unsupported_media_type"),
        "Windows executable": (b"MZ\x90\x00" + b"\x00" * 200, 415, "unsupported_media_type"),
        "zip bomb": (bomb.getvalue(), 415, "unsupported_media_type"),
        "decompression bomb": (png(60_000, 60_000), 415, "unsupported_media_type"),
        "truncated image": (b"\x89PNG\r\n\x1a\n\x00\x00", 415, "unsupported_media_type"),
        "empty": (b"", 422, "validation_error"),
        "oversize": (b"%PDF-" + b"0" * MAX_BYTES, 413, "too_large"),
    }  # fmt: skip
    assert len(bomb.getvalue()) < 1024 * 1024
    for what, (content, status, code) in refused.items():
        response = upload(world, case, content, name="录取通知书.pdf")
        assert (response.status_code, response.json()["code"]) == (status, code), what
        assert response.json()["message"], what  # a Chinese sentence for the clerk
    unknown = upload(world, case, PDF, kind="passport")
    assert unknown.status_code == 422
    assert unknown.json()["details"][0]["field"] == "kind"
    assert stored(world, case) == 0 and case_row(world.engine, case).version == version
    assert world.settings.attachments_dir is not None
    assert [p for p in Path(world.settings.attachments_dir).rglob("*") if p.is_file()] == []


def test_documents_are_scoped_like_the_case_and_every_read_is_recorded(world: World) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.ARCHIVE_CHECK)
    attached = upload(world, case, png(800, 600), kind="hardship_proof", name="证明.png",
                      media_type="image/png").json()  # fmt: skip
    url = f"/api/cases/{case}/attachments/{attached['id']}"
    # A sibling unit's clerk learns nothing: not the case, not its documents.
    assert upload(world, case, PDF, who=SIBLING).status_code == 404
    assert (
        world.client.get(f"/api/cases/{case}/attachments", headers=world.as_(SIBLING)).status_code
        == 404
    )
    assert world.client.get(url, headers=world.as_(SIBLING)).status_code == 404
    # The clerk who entered it may not open it; the district's reviewer may, and is recorded.
    assert world.client.get(url, headers=world.as_(CLERK)).status_code == 403
    response = world.client.get(url, headers=world.as_(REVIEWER))
    assert response.status_code == 200
    assert response.content == png(800, 600)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    with world.engine.connect() as conn:
        reads = conn.execute(
            select(pii_t.c.actor, pii_t.c.fields).where(pii_t.c.case_id == case)
        ).all()
    assert [(r.actor, list(r.fields)) for r in reads] == [(REVIEWER, ["attachment.hardship_proof"])]
    other = world.client.get(
        f"/api/cases/{case}/attachments/{attached['id'] + 999}", headers=world.as_(REVIEWER)
    )
    assert other.status_code == 404


def test_an_ended_case_takes_no_more_documents(world: World) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.REJECTED)
    response = upload(world, case, PDF)
    assert response.status_code == 409 and response.json()["code"] == "event_not_allowed"
    assert stored(world, case) == 0


def test_a_nul_is_refused_in_a_form_field_and_in_a_file_name_but_not_in_a_file(
    world: World,
) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    in_field = upload(world, case, PDF, kind="admission_notice\x00")
    assert (in_field.status_code, in_field.json()["code"]) == (422, "validation_error")
    in_name = upload(world, case, PDF, name="a\x00.pdf")
    assert (in_name.status_code, in_name.json()["code"]) == (422, "validation_error")
    assert stored(world, case) == 0
    assert upload(world, case, PDF + b"\x00\x00binary").status_code == 201


def test_an_identity_number_in_a_file_name_is_masked_without_pii_read(world: World) -> None:
    case = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    name = "身份证370102200801012518.pdf"
    shown = upload(world, case, PDF, kind="identity_card", name=name).json()["filename"]
    assert "370102200801012518" not in shown and shown.endswith(".pdf")
    listed = world.client.get(f"/api/cases/{case}/attachments", headers=world.as_("manager.wh-hc"))
    assert listed.json()[0]["filename"] == name  # pii.read: in full
