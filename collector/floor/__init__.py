"""The pure floor model (docs/architecture.md: the branch floor): events and statuses in, branch state out, no I/O."""
