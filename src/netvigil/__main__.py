import sys

from netvigil.cli import main

sys.exit(main())
