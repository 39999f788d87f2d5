import sys

from platform_core.cli import main

sys.exit(main())
