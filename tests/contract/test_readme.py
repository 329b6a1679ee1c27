"""The README's "Point your own tools at it" snippets run as written (only the port is this exchange's)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Point your own tools at it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_snippets_run_against_the_exchange(exchange, capsys):
    blocks = snippets()
    assert len(blocks) == 3  # ccxt, ccxt.pro, the official SDK
    stop = threading.Event()
    clock = threading.Thread(target=lambda: [exchange.step() for _ in range(200) if not stop.wait(0.05)])
    clock.start()
    namespace: dict[str, object] = {}
    try:
        for block in blocks:
            exec(compile(block.replace("8765", str(exchange.port)), str(README), "exec"), namespace)
    finally:
        stop.set()
        clock.join()
    printed = capsys.readouterr().out
    assert "True" in printed  # the open LIMIT order was listed
    assert "markPriceUpdate" in printed or "mark_price" in printed.lower() or "MarkPrice" in printed
