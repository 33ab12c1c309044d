import sys

from devhub.cli import main

sys.exit(main())
