"""``PositionLedger`` and what only it uses: the SQLite store, its records and schema, reconciliation."""
