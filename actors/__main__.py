"""``python -m actors`` runs the nancemakina CLI."""

import sys

from actors.cli import main

sys.exit(main())
