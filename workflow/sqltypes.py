"""Column types shared by the tables (they live in notifications/, which workflow may import)."""

from jinqiu.notifications.sqltypes import JSONType, UTCDateTime

__all__ = ["JSONType", "UTCDateTime"]
