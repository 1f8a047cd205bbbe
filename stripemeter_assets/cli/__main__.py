"""`python -m stripemeter_assets.cli …` runs the `stripemeter` command."""

import sys

from stripemeter_assets.cli.commands import main

sys.exit(main())
