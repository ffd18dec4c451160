"""`python -m outlast`: the command line, as the `outlast` script runs it."""

import sys

from outlast.cli import main

sys.exit(main())
