"""A progress bar on a terminal that log lines do not garble: a line logged while the bar is
drawn prints whole, on its own line, above it; the bar's last state is printed once."""

from __future__ import annotations

import io
import json
import re

from broker.logs import configure, get_logger
from broker.terminal import TerminalBar

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_a_log_line_written_while_the_bar_is_drawn_prints_whole_above_it() -> None:
    screen = io.StringIO()
    configure("INFO", "json")
    log = get_logger("connectors.pipeline")
    bar = TerminalBar("incidents.csv", 10, screen, force_terminal=True)
    bar.advance(3)
    log.warning("record dead-lettered", position="row 4", reason="bad date")
    bar.advance(7)
    bar.close()
    lines = [line.strip() for line in ANSI.sub("", screen.getvalue()).replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line]
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert [entry["event"] for entry in logged] == ["record dead-lettered"]
    assert logged[0]["position"] == "row 4"
    assert lines[-1].startswith("incidents.csv") and "10/10" in lines[-1]
    assert sum("10/10" in line for line in lines) == 1, "the finished bar is printed once"
