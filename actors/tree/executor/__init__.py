"""``OrderExecutor`` and what only it uses: terms and entry slots, retries by client id, protective orders."""
