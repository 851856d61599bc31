import sys

from hookrelay.cli import main

sys.exit(main())
