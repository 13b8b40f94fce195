"""`python -m gymserve ...` runs the `gymserve` command."""

import sys

from gymserve.cli import main

sys.exit(main())
