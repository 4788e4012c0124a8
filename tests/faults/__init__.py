"""Fault injection: real processes, a steady load, a running tally, exact totals.

A *rig* (:mod:`tests.faults.rig`) runs Mosquitto, the collector and edge agents
whose devices are emulated on ptys by this process (:mod:`tests.faults.load`);
every line a device sends is tallied. A *scenario* (:mod:`tests.faults.scenarios`)
injects one fault, lets the system recover, and compares what the devices
produced, what the agents recorded and what the collector counts
(:mod:`tests.faults.truth`). ``python -m tests.faults`` (``make faults``) runs the
full variants and prints the figures docs/reliability.md quotes;
``tests/faults/test_faults.py`` runs the quick variants in ``make test``;
``python -m tests.faults.soak`` (``make soak``) is the long run.
"""
