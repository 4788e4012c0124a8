"""The pure floor model: events and statuses in, branch state out, no I/O."""
