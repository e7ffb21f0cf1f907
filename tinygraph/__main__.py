"""`python -m tinygraph ...`: the command line lives in tinygraph_app (it uses every package)."""
import sys

from tinygraph_app.cli import main

sys.exit(main())
