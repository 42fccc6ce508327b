"""schemathesis hooks of `make api-fuzz`.

An Idempotency-Key replays the first response for the same body and refuses (422) another body:
the fuzzer, which reuses the few header values it draws, would send one key with many bodies.
A well-formed key is therefore made unique per request; a malformed one is left as drawn, so the
header's own validation is still fuzzed.
"""
import itertools
import re

import schemathesis

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
_sequence = itertools.count()


@schemathesis.hook
def map_case(context, case):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _WELL_FORMED.match(key):
        case.headers["Idempotency-Key"] = f"fuzz-{next(_sequence)}"
    return case
