"""``branchwatch demo``: broker, collector and simulated branches, with a live terminal view."""
