import sys

from pdlib.cli import main

sys.exit(main())
