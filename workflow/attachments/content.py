"""What an uploaded file is, from its bytes alone: PDF, JPEG or PNG, and not a bomb.

The name and the declared Content-Type are the sender's claims and are ignored: a renamed
executable or archive is refused by its first bytes. Images declare their pixel size in their
header; one that would decode to more than MAX_PIXELS (a "decompression bomb": a few kilobytes
that expand to gigabytes in whatever viewer opens it) is refused before anyone opens it."""

from __future__ import annotations

import struct

from jinqiu.workflow.errors import TooLarge, UnsupportedMediaType, ValidationFailed

MAX_BYTES = 10 * 1024 * 1024  # one scanned document; the HTTP body limit is 20 MB
MAX_PIXELS = 50_000_000  # a 600-dpi A3 scan is ≈ 70 M pixels at most; phones make 12–50 M

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
ACCEPTED = (PDF, JPEG, PNG)


def media_type_of(content: bytes) -> str:
    """The accepted type `content` is, or the refusal (typed errors, Chinese messages)."""
    if not content:
        raise ValidationFailed(
            "文件为空", [{"field": "file", "code": "empty", "message": "文件为空"}]
        )
    if len(content) > MAX_BYTES:
        raise TooLarge(f"文件过大：最多 {MAX_BYTES // (1024 * 1024)} MB", {"max_bytes": MAX_BYTES})
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        _check_pixels(*_png_size(content))
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        _check_pixels(*_jpeg_size(content))
        return JPEG
    raise UnsupportedMediaType(
        "只接受 PDF、JPEG 或 PNG 文件（按文件内容判断，与文件名无关）",
        {"accepted": list(ACCEPTED)},
    )


def _png_size(content: bytes) -> tuple[int, int]:
    # The signature is followed by the IHDR chunk: length, "IHDR", width, height (big-endian).
    if len(content) < 24 or content[12:16] != b"IHDR":
        raise _unreadable()
    width, height = struct.unpack(">II", content[16:24])
    return width, height


# JPEG markers that start a frame and carry its size (SOF0–SOF15 but DHT, JPG and DAC).
_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(content: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(content):
        if content[at] != 0xFF:
            raise _unreadable()
        marker = content[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", content[at + 2 : at + 4])
        if marker in _FRAME_MARKERS:
            if at + 9 > len(content):
                raise _unreadable()
            height, width = struct.unpack(">HH", content[at + 5 : at + 9])
            return width, height
        if length < 2:
            raise _unreadable()
        at += 2 + length
    raise _unreadable()


def _check_pixels(width: int, height: int) -> None:
    if width == 0 or height == 0:
        raise _unreadable()
    if width * height > MAX_PIXELS:
        raise UnsupportedMediaType(
            f"图片尺寸过大（{width}×{height}），疑为恶意文件，请缩小后重新上传",
            {"max_pixels": MAX_PIXELS},
        )


def _unreadable() -> UnsupportedMediaType:
    return UnsupportedMediaType("图片文件已损坏或无法识别", {"accepted": list(ACCEPTED)})
