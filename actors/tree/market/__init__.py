"""``MarketStream`` and what only it uses: the published board (prices, status) and gap backfill."""
