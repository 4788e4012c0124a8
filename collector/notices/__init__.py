"""Floor notices: the collector tells the branch first (backfill, follow-ups, open a counter)."""
