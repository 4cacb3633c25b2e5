"""jinqiu.storage: what every package with tables shares and nothing of the domain — the column
types. The lowest layer: notifications/ (which may not import workflow/) and workflow/ both
build their tables on it, and it imports neither."""
