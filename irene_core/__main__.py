import sys

from irene_core.cli import main

sys.exit(main())
