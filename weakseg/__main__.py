"""``python -m weakseg`` (also what ``torchrun -m weakseg`` runs)."""

import sys

from weakseg.cli import main

sys.exit(main())
