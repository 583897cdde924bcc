"""``python -m training --help``: the script-mode entry (see training.entry)."""

import sys

from training.entry import main

sys.exit(main())
