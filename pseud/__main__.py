"""``python -m pseud``: the pseud command line (see pseud.cli)."""
import sys

from .cli import main

sys.exit(main())
