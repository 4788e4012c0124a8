"""``python -m branchwatch`` is the ``branchwatch`` command."""

import sys

from branchwatch.cli import main

sys.exit(main())
