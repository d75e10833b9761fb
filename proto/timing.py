"""Timing events: wall-clock stamps the daemons log at the steps of a change, as JSON.

A benchmark lines up the controller's stamps for a `run` (received,
committed, running) with the agents' (view updated, pass began, network
built, process started, table programmed) to show where the time of an
attach goes. Each event is one log line whose message is `MARKER` followed
by a JSON object, so a reader takes `json.loads` of what follows the marker
instead of scraping free text that changes with every rewording:

    timing-event {"event": "run", "container": "c1", "host": "h1", "received": 1733150000.12, ...}

One line per change (never per table entry), so the events cost nothing
measurable.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

MARKER = "timing-event "

# The events and their stamps, as the daemons emit them.
RUN = "run"                      # controller: received, committed, running (container, host)
CONNECT = "connect"              # controller: received, committed, applied (container, network)
CONTAINER_STARTED = "container-started"  # agent: update, began, network, built, process (container, host)
TABLE_PROGRAMMED = "table-programmed"    # agent: update, began, programmed (network, host, fdb_put, ...)
CLI = "cli"                      # the CLI, on stderr when asked: entered, imported, connected, answered (command)


def line(event: str, **fields: Any) -> str:
    """The event as one line of text."""
    return MARKER + json.dumps({"event": event, **fields}, sort_keys=True)


def emit(log: logging.Logger, event: str, **fields: Any) -> None:
    log.info("%s", line(event, **fields))


def parse(line: str) -> dict[str, Any] | None:
    """The event in one log line, or None for any other line."""
    at = line.find(MARKER)
    if at < 0:
        return None
    try:
        event = json.loads(line[at + len(MARKER):])
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def events(lines: Iterable[str], kind: str | None = None) -> Iterator[dict[str, Any]]:
    """Every event in `lines` (of `kind`, if given), in order."""
    for line in lines:
        event = parse(line)
        if event is not None and (kind is None or event["event"] == kind):
            yield event
