import sys

from bert.cli import main

sys.exit(main())
