"""``python -m actors.sim --data FILE ...`` runs the local exchange (same as ``nancemakina exchange``)."""

import sys

from actors.sim.cli import run_exchange_cli

sys.exit(run_exchange_cli())
