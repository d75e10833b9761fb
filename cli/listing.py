"""What `ps` and `network ls` show a script: Docker's --filter KEY=VALUE and
--format placeholders (cli/templates.py), over the CLI's JSON of each item."""
from __future__ import annotations

import time
from collections.abc import Callable

from cli.options import CliError
from cli.output import command_text, networks_text, ports_text, status_text
from proto.records import Network

CONTAINER_FILTERS = ("name", "id", "status", "network", "host", "label")
NETWORK_FILTERS = ("name", "id", "driver", "label", "scope")


def parse_filters(items: list[str], known: tuple[str, ...]) -> dict[str, list[str]]:
    """Values of one key are alternatives; different keys must all match."""
    wanted: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise CliError(f"invalid filter {item!r}: use one of {', '.join(known)} as KEY=VALUE")
        wanted.setdefault(key, []).append(value)
    return wanted


def label_matches(labels: dict[str, str], text: str) -> bool:
    key, sep, value = text.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _matcher(wanted: dict[str, list[str]], tests: dict[str, Callable]) -> Callable:
    return lambda item: all(any(tests[k](item, v) for v in values) for k, values in wanted.items())


def container_filter(items: list[str]) -> Callable[[dict], bool]:
    """ps --filter: name (a part of it), id (a prefix), status, network, host, label."""
    return _matcher(parse_filters(items, CONTAINER_FILTERS), {
        "name": lambda c, v: v in c["name"], "id": lambda c, v: c["id"].startswith(v),
        "status": lambda c, v: c["state"] == v, "network": lambda c, v: v in c["networks"],
        "host": lambda c, v: c["host"] == v, "label": lambda c, v: label_matches(c["labels"], v)})


def network_filter(items: list[str]) -> Callable[[Network], bool]:
    """network ls --filter: name (a part of it), id (a prefix), driver, label, scope."""
    return _matcher(parse_filters(items, NETWORK_FILTERS), {
        "name": lambda n, v: v in n.name, "id": lambda n, v: n.id.startswith(v),
        "driver": lambda n, v: n.driver == v, "label": lambda n, v: label_matches(n.labels, v),
        "scope": lambda n, v: v == docker_scope(n)})


def docker_scope(network: Network) -> str:
    return "swarm" if network.scope == "global" else network.scope or "local"


def container_fields(c: dict) -> dict:
    """A container as `ps --format` sees it: Docker's placeholders first, then
    every field of its JSON."""
    return {"ID": c["id"][:12], "Names": c["name"], "Image": c["image"], "Command": f'"{command_text(c)}"',
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(c["created_at"])),
            "Status": status_text(c), "State": c["state"], "Ports": ports_text(c), "Networks": networks_text(c),
            "Host": c["host"], "Labels": ",".join(f"{k}={v}" for k, v in sorted(c["labels"].items())), **c}


def network_fields(n: Network) -> dict:
    """A network as `network ls --format` sees it."""
    return {"ID": n.id[:12], "Name": n.name, "Driver": n.driver, "Scope": docker_scope(n),
            "Internal": n.internal, "Labels": ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(n.created_at)),
            **n.to_dict()}
