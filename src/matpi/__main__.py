"""`python -m matpi` is the `matpi` command."""

import sys

from matpi.cli import main

sys.exit(main())
