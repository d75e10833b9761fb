"""Names for containers run without --name, shaped as Docker's: ADJECTIVE_NOUN,
with a number appended when every pair tried is taken."""
from __future__ import annotations

import secrets
from collections.abc import Callable, Collection

ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "curious", "daring",
    "eager", "fair", "fearless", "fond", "gentle", "glad", "golden", "happy", "hardy", "humble", "jolly",
    "keen", "kind", "lively", "loyal", "lucid", "merry", "mellow", "modest", "nimble", "noble", "patient",
    "plucky", "proud", "quiet", "quick", "rapid", "serene", "sharp", "shiny", "steady", "sunny", "swift",
    "tender", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous",
)
NOUNS = (
    "albatross", "badger", "beaver", "bison", "condor", "crane", "dolphin", "falcon", "ferret", "finch",
    "fox", "gazelle", "gecko", "heron", "ibex", "jackal", "jaguar", "kestrel", "koala", "lemur", "lynx",
    "marmot", "marten", "meerkat", "mole", "moose", "narwhal", "ocelot", "orca", "osprey", "otter", "owl",
    "panda", "pelican", "puffin", "quail", "raven", "robin", "salmon", "seal", "sparrow", "stoat", "swan",
    "tapir", "tern", "toucan", "vole", "walrus", "weasel", "wombat", "wren", "yak", "zebra",
)
ATTEMPTS = 10


def generated_name(taken: Collection[str] | Callable[[str], bool],
                   choice: Callable[[tuple[str, ...]], str] = secrets.choice) -> str:
    """A name not in `taken` (a collection, or a test saying whether a name is taken)."""
    is_taken = taken if callable(taken) else taken.__contains__
    name = ""
    for attempt in range(ATTEMPTS):
        name = f"{choice(ADJECTIVES)}_{choice(NOUNS)}"
        if attempt >= ATTEMPTS // 2:
            name += str(secrets.randbelow(100))
        if not is_taken(name):
            return name
    return f"{name}_{secrets.token_hex(3)}"
