import sys

from mrod.cli import main

sys.exit(main())
