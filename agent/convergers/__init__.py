"""The agent's convergers: one per kind of thing this host must have, each
keeping its own memory of what it built and checked.

Each compares what the view asks for with what the host has and fixes the
difference (`converge`), remembering what it built so an event pass only
touches what changed; `forget` drops that memory, so the next pass
re-checks everything (the periodic pass, and the pass after a failure).
agent/reconcile.py runs them in order; the network drivers (agent/drivers/)
make the convergers of their networks.
"""
