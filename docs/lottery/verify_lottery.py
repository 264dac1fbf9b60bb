#!/usr/bin/env python3
"""Check an event's pre-sale lottery from its published data, with nothing but Python.

    verify_lottery.py BASE_URL EVENT_ID [USER_ID]

Reads GET /v1/events/{id}/lottery and its entrant list, checks that the seed hashes to
the commitment published before the draw and that the list hashes to its fingerprint,
recomputes every entrant's draw and prints the order (one tag per line, first let in
first). With USER_ID it also prints that user's tag and place. The algorithm is in
docs/lottery.md; this file is its reference implementation outside seatq's code.
Exits 1 if anything does not check out.
"""

import hashlib
import hmac
import json
import sys
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def tag(event_id, user_id):
    return hashlib.sha256(f"{event_id}:{user_id}".encode()).hexdigest()


def draw(seed, entrant_tag):
    mac = hmac.new(seed, entrant_tag.encode(), hashlib.sha256).digest()
    return (int.from_bytes(mac[:8], "big") >> 11) / float(1 << 53)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    base, event_id = sys.argv[1].rstrip("/"), sys.argv[2]
    lottery = json.loads(get(f"{base}/v1/events/{event_id}/lottery"))
    if not lottery.get("revealed"):
        sys.exit(f"not revealed yet: the seed is published at {lottery['reveal_at']}")
    seed = bytes.fromhex(lottery["seed"])
    if hashlib.sha256(seed).hexdigest() != lottery["commitment"]:
        print("FAIL: the seed does not hash to the commitment", file=sys.stderr)
        sys.exit(1)
    listing = get(base + lottery["entrants_url"])
    if hashlib.sha256(listing).hexdigest() != lottery["entrants_fingerprint"]:
        print("FAIL: the entrant list does not match its fingerprint", file=sys.stderr)
        sys.exit(1)
    tags = listing.decode().splitlines()
    if len(tags) != lottery["entrants"] or tags != sorted(tags):
        print("FAIL: the entrant list is not the sorted list announced", file=sys.stderr)
        sys.exit(1)
    order = sorted(tags, key=lambda t: draw(seed, t))
    for t in order:
        print(t)
    if len(sys.argv) == 4:
        mine = tag(event_id, sys.argv[3])
        if mine not in order:
            print(f"user {sys.argv[3]}: not an entrant (tag {mine})", file=sys.stderr)
            sys.exit(1)
        print(f"place {order.index(mine) + 1} of {len(order)} (tag {mine})", file=sys.stderr)


if __name__ == "__main__":
    main()
