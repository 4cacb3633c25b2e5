"""Documents uploaded for a case (录取通知书, 成绩单, 困难证明 …): kept by content hash."""
