import sys

from mixopt.cli import main

sys.exit(main())
