"""Where attachments' bytes are kept, addressed by their SHA-256: the AttachmentStore the
service asks (put, get), chosen by the settings (`store_of`) — on the filesystem (FileStore, the
default) or in an S3-compatible object store (s3.S3Store, JINQIU_ATTACHMENTS_STORE=s3).

On the filesystem, a file is written (to a temporary name, then renamed) before the row that names it is
committed; a rolled-back upload leaves an unreferenced file, harmless because content-addressed
(the same bytes uploaded again find it). Several `serve` hosts need one shared directory
(JINQIU_ATTACHMENTS_DIR on a shared filesystem)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import URL

from jinqiu.workflow.attachments.s3 import S3Settings, S3Store
from jinqiu.workflow.config import Settings
from jinqiu.workflow.errors import DomainError

_HEX = frozenset("0123456789abcdef")


class StoreNotConfigured(DomainError):
    code = "attachments_not_configured"
    status = 503


class AttachmentStore(Protocol):
    def put(self, content: bytes) -> str:
        """Keeps the bytes (once: the same bytes again are found); returns their SHA-256."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes of that SHA-256, checked against it (a mismatch is never served)."""
        ...


def store_of(settings: Settings, database: URL) -> AttachmentStore:
    """The store the settings choose: S3 when JINQIU_ATTACHMENTS_STORE=s3 (its settings checked
    first, StoreMisconfigured naming each problem), else the filesystem."""
    if settings.attachments_store == "s3":
        return S3Store(S3Settings.of(settings))
    return FileStore.of(settings, database)


@dataclass(frozen=True)
class FileStore:
    root: Path | None  # None: not configured (refused when bytes are to be kept or read)

    @classmethod
    def of(cls, settings: Settings, database: URL) -> FileStore:
        """JINQIU_ATTACHMENTS_DIR, or beside the SQLite database file (`jinqiu.db.files/`)."""
        if settings.attachments_dir:
            return cls(Path(settings.attachments_dir))
        url = database
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return cls(Path(url.database).with_name(Path(url.database).name + ".files"))
        return cls(None)

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return digest

    def get(self, digest: str) -> bytes:
        content = self._path(digest).read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:  # changed on disk: never serve it
            raise OSError(f"attachment {digest} does not match its hash")
        return content

    def _path(self, digest: str) -> Path:
        if self.root is None:
            raise StoreNotConfigured("未配置附件存储目录（JINQIU_ATTACHMENTS_DIR）")
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ValueError("not a SHA-256 hex digest")
        return self.root / digest[:2] / digest
