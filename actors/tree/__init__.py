"""The actors of the tree: one module or package per actor, named after its class, with what only it uses.

``pair_timeframe`` (``PairTimeframe``), ``market/`` (``MarketStream``), ``executor/`` (``OrderExecutor``),
``ledger/`` (``PositionLedger``); ``actor_refs`` and ``relays`` say how they reach each other.
"""
