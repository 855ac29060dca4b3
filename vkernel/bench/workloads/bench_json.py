"""json: json.dumps and json.loads round trips of nested data."""
import hashlib
import json
import random
import sys
import time


def document(rng, size):
    return {
        "id": rng.randrange(1 << 40),
        "name": "record-%d" % size,
        "tags": ["t%d" % rng.randrange(100) for _ in range(8)],
        "scores": [rng.random() for _ in range(10)],
        "nested": [{"k": i, "v": "x" * (i % 7), "ok": i % 2 == 0, "none": None} for i in range(size)],
        "unicode": "caf\u00e9 \u2603 %d" % size,
    }


def work(n):
    rng = random.Random(99)
    docs = [document(rng, 20 + i % 10) for i in range(50)]
    digest = hashlib.sha256()
    total = 0
    for r in range(n):
        for d in docs:
            s = json.dumps(d, sort_keys=(r % 2 == 0))
            back = json.loads(s)
            total += len(s) + len(back["nested"])
        if r % 10 == 0:
            digest.update(json.dumps(docs, indent=1).encode())
    return total, digest.hexdigest()[:16]


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(140 * scale))
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
