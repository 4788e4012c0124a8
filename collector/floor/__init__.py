"""The pure floor model (DESIGN §2): events and statuses in, branch state out, no I/O."""
