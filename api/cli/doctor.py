"""`jinqiu doctor`: are the settings found, and do they work? One line per check, in Chinese,
with a stable code (`--json`: one object per check); exit 1 when any check fails. It only
looks: it creates no database file, no key file and no directory."""

from __future__ import annotations

import datetime as dt
import smtplib
import tempfile
from dataclasses import asdict, dataclass

import chinese_calendar.constants
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jinqiu.api.security import KEY_VARIABLE, MIN_KEY_BYTES
from jinqiu.workflow.attachments.s3 import S3Settings, StoreMisconfigured
from jinqiu.workflow.attachments.store import FileStore
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.config import DatabaseChoice, Settings, normalise_url
from jinqiu.workflow.db import make_engine
from jinqiu.workflow.migrate import alembic_config
from jinqiu.workflow.runtime import sqlite_path

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
SMTP_TIMEOUT = 5.0
SOURCES = {"--database": "命令行 --database", "JINQIU_DATABASE_URL": "环境变量 JINQIU_DATABASE_URL",
           "default": "默认值 ./jinqiu.db"}  # fmt: skip


@dataclass(frozen=True)
class Check:
    code: str  # stable, for programs: database, migrations, calendar, smtp, secret_key, attachments
    ok: bool
    message: str  # Chinese, for people
    value: str | None = None


def shown_url(url: str) -> str:
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def official_years() -> tuple[int, int]:
    years = {day.year for day in chinese_calendar.constants.holidays}
    return min(years), max(years)


def check_database(choice: DatabaseChoice) -> tuple[list[Check], list[int]]:
    """The database, its migrations and the campaigns' years (for the calendar check)."""
    where = f"{shown_url(choice.url)}（来自{SOURCES[choice.source]}）"
    path = sqlite_path(choice.url)
    if path is not None and not path.exists():
        return [
            Check("database", False, f"数据库文件不存在：{where}；请在正确的目录运行，或设置 "
                  "JINQIU_DATABASE_URL / --database", shown_url(choice.url)),
            Check("migrations", False, "数据库不存在，无法检查迁移"),
        ], []  # fmt: skip
    engine = make_engine(choice.url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            applied = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            years: list[int] = []
            if applied is not None:
                years = [
                    int(y) for (y,) in conn.execute(text("SELECT DISTINCT year FROM campaign"))
                ]
    except Exception as error:  # any failure to connect is the finding itself
        first = str(getattr(error, "orig", None) or error).strip().splitlines()
        return [
            Check("database", False, f"无法连接数据库 {where}：{first[0] if first else error}",
                  shown_url(choice.url)),
            Check("migrations", False, "数据库无法连接，无法检查迁移"),
        ], []  # fmt: skip
    finally:
        engine.dispose()
    checks = [Check("database", True, f"数据库：{where}", shown_url(choice.url))]
    if applied == head:
        checks.append(Check("migrations", True, f"数据库结构已是最新（{applied}）", applied))
    else:
        checks.append(
            Check("migrations", False, f"数据库结构为 {applied or '空'}，最新为 {head}：请运行 "
                  "jinqiu db upgrade（jinqiu serve 启动时也会升级）", applied)
        )  # fmt: skip
    return checks, years


def check_calendar(campaign_years: list[int], today: dt.date) -> Check:
    first, last = official_years()
    needed = sorted({today.year, *campaign_years})
    missing = [y for y in needed if not first <= y <= last]
    covered = f"{first}–{last}"
    if missing:
        return Check("calendar", False, f"官方节假日日历覆盖 {covered} 年，不含 "
                     f"{'、'.join(map(str, missing))} 年：请升级 chinesecalendar，或在活动文件的 "
                     "calendar 中给出该年的节假日与调休", covered)  # fmt: skip
    return Check(
        "calendar", True, f"官方节假日日历覆盖 {covered} 年（含今年与各活动年度）", covered
    )


def check_smtp(settings: Settings) -> Check:
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
            code, _ = smtp.noop()
    except (TimeoutError, OSError, smtplib.SMTPException) as error:
        return Check("smtp", False, f"无法连接邮件服务器 {where}：{error}；提醒邮件将无法发送"
                     "（JINQIU_SMTP_HOST / JINQIU_SMTP_PORT）", where)  # fmt: skip
    if code != 250:
        return Check("smtp", False, f"邮件服务器 {where} 应答异常（{code}）", where)
    return Check("smtp", True, f"邮件服务器 {where} 可连接", where)


def check_secret_key(settings: Settings, choice: DatabaseChoice) -> Check:
    if settings.secret_key is not None:
        size = len(settings.secret_key.encode())
        if size < MIN_KEY_BYTES:
            return Check("secret_key", False,
                         f"{KEY_VARIABLE} 过短：{size} 字节，须至少 {MIN_KEY_BYTES} 字节")  # fmt: skip
        return Check("secret_key", True, f"签名密钥已由 {KEY_VARIABLE} 设置")
    path = sqlite_path(choice.url)
    if path is None:
        return Check("secret_key", False, f"未设置 {KEY_VARIABLE}：非 SQLite 数据库须设置至少 "
                     f"{MIN_KEY_BYTES} 字节的随机密钥")  # fmt: skip
    key = path.absolute().with_name(path.name + ".secret")
    if key.exists():
        return Check("secret_key", True, f"签名密钥在 {key}（未设置 {KEY_VARIABLE}）", str(key))
    return Check("secret_key", True, f"未设置 {KEY_VARIABLE}：jinqiu serve 首次启动时将在 {key} "
                 "生成密钥", str(key))  # fmt: skip


def check_attachments(settings: Settings, choice: DatabaseChoice) -> Check:
    if settings.attachments_store == "s3":  # checked, not contacted (doctor creates nothing)
        try:
            s3 = S3Settings.of(settings)
        except StoreMisconfigured as error:
            return Check("attachments", False, error.message)
        return Check(
            "attachments", True, f"附件保存在对象存储 {s3.endpoint_url} 的桶 {s3.bucket}",
            s3.endpoint_url,
        )  # fmt: skip
    store = FileStore.of(settings, make_url(normalise_url(choice.url)))
    if store.root is None:
        return Check("attachments", False, "未设置附件目录 JINQIU_ATTACHMENTS_DIR（非 SQLite "
                     "数据库须设置），上传的材料将无处保存")  # fmt: skip
    root = store.root.absolute()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the directory is made on the first upload
    try:
        if existing.is_dir():
            with tempfile.TemporaryFile(dir=existing):
                pass
        else:
            raise NotADirectoryError(str(existing))
    except OSError as error:
        return Check("attachments", False, f"附件目录 {root} 不可写：{error}", str(root))
    made = "" if root.exists() else "（尚未创建，首次上传时建立）"
    return Check("attachments", True, f"附件目录 {root} 可写{made}", str(root))


def diagnose(settings: Settings, choice: DatabaseChoice, today: dt.date) -> list[Check]:
    checks, years = check_database(choice)
    return [
        *checks,
        check_calendar(years, today),
        check_smtp(settings),
        check_secret_key(settings, choice),
        check_attachments(settings, choice),
    ]


def as_json(checks: list[Check]) -> list[dict[str, object]]:
    return [asdict(c) for c in checks]
