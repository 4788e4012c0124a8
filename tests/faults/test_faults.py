"""The quick variant of every fault (make faults runs the full ones): small, short, exact.

The faults that need a running system share one rig, in the catalog's order; before each,
the rig is put whole again (every process up, every device in), so one failure does not
hide the next. A fault marked with a known product bug is left out (make faults runs it
and fails until the bug is fixed); none is marked at present.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import MOSQUITTO_PATHS
from tests.faults.catalog import FAULTS, Fault
from tests.faults.report import Outcome, details
from tests.faults.rig import Rig, RigSettings
from tests.faults.scenarios import QUICK
from tests.support import require_binary

pytestmark = pytest.mark.integration

PROVEN = [fault for fault in FAULTS if not fault.bug]
ON_A_RIG = [fault for fault in PROVEN if fault.started]
ALONE = [fault for fault in PROVEN if not fault.started]


def assert_ok(outcome: Outcome) -> None:
    assert outcome.ok, f"{outcome.fault}: {outcome.failures()}\n{details([outcome])}"


@pytest.fixture(scope="module")
def shared_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    with Rig(tmp_path_factory.mktemp("faults"), RigSettings(branches=QUICK.branches)) as rig:
        yield rig


@pytest.fixture
def rig(shared_rig: Rig) -> Rig:
    shared_rig.repair()
    return shared_rig


@pytest.mark.parametrize("fault", ON_A_RIG, ids=lambda fault: fault.name)
def test_fault_on_a_running_system(rig: Rig, fault: Fault) -> None:
    assert_ok(fault.run(rig, QUICK))


@pytest.mark.parametrize("fault", ALONE, ids=lambda fault: fault.name)
def test_fault_alone(tmp_path: Path, fault: Fault) -> None:
    assert_ok(fault.run(Rig(tmp_path), QUICK))
