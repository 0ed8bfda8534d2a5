#!/usr/bin/env python3
"""Checks what the streams really send against the OpenAPI document that describes them.

Schemathesis checks the REST answers but cannot read an endless event stream. This reads
`/v1/events` of a running gateway for a while and validates every `data:` line against
`SseData`, and every event also against its own typed envelope (`OrderEvent`,
`BalanceEvent`, ...), so the schemas client generators read stay true to the wire.
Run by .ci/run: `check_streams.py <gateway url> <seconds> [api key]`. Needs `jsonschema`
(installed with schemathesis). Exits 1 on any mismatch, or when too few events arrived to
mean anything.
"""

import json
import sys
import time
import urllib.request

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

TYPED = {"AccountBalance": "BalanceEvent", "CurrentPosition": "PositionEvent", "status": "StatusEvent"}


def open_url(url, key):
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    return urllib.request.urlopen(request, timeout=10)


def main():
    base, seconds = sys.argv[1].rstrip("/"), float(sys.argv[2])
    key = sys.argv[3] if len(sys.argv) > 3 else None
    document = json.load(open_url(base + "/openapi.json", key))
    registry = Registry().with_resource("urn:doc", Resource.from_contents(document, default_specification=DRAFT202012))
    schemas = document["components"]["schemas"]

    def validator(name):
        return Draft202012Validator({"$ref": "urn:doc#/components/schemas/" + name}, registry=registry)

    validators = {name: validator(name) for name in schemas}
    failures, counts = [], {}

    def check(name, value, what):
        for error in validators[name].iter_errors(value):
            failures.append(f"{what} vs {name} at {list(error.absolute_path)[:6]}: {error.message[:200]}")

    stream = open_url(base + "/v1/events", key)
    deadline, event = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        line = stream.readline().decode()
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:])
            counts[event] = counts.get(event, 0) + 1
            check("SseData", data, event)
            if event in ("snapshot", "reset"):
                check("Snapshot", data, event)
            elif TYPED.get(event, event + "Event") in validators:
                check(TYPED.get(event, event + "Event"), data, event)
    print("validated", sum(counts.values()), "stream messages by type:", json.dumps(counts, sort_keys=True))
    for failure in failures[:20]:
        print("MISMATCH", failure)
    if failures:
        sys.exit(1)
    if counts.get("snapshot", 0) < 1 or sum(counts.values()) < 50:
        print("too few stream messages to check anything; is the market script running?")
        sys.exit(1)


if __name__ == "__main__":
    main()
