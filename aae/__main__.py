import sys

from .runner.reproduce import main

sys.exit(main())
