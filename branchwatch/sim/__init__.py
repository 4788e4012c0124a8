"""Simulated branches: a pure floor model, a generator for benchmarks, an MQTT edge."""

from branchwatch.sim.generate import (
    DEFAULT_REGIONS,
    branch_ids,
    generate,
    generate_batches,
    make_branches,
)
from branchwatch.sim.model import AGENT, BranchSim
from branchwatch.sim.profile import DEFAULT_PROFILE, Profile

__all__ = [
    "AGENT",
    "DEFAULT_PROFILE",
    "DEFAULT_REGIONS",
    "BranchSim",
    "Profile",
    "branch_ids",
    "generate",
    "generate_batches",
    "make_branches",
]
