import sys

from irene_core.cli.app import main

sys.exit(main())
