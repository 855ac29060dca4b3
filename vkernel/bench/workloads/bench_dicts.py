"""dicts: dict insert, lookup, update and delete with int and str keys."""
import sys
import time


def work(n):
    total = 0
    for round_ in range(4):
        d = {}
        for i in range(n):
            d[i * 7 + round_] = i
        s = {}
        for i in range(0, n, 2):
            s["k%d" % i] = i
        for i in range(n):
            total += d.get(i, -1)
            v = s.get("k%d" % i)
            if v is not None:
                total += v
        for i in range(0, n, 3):
            del d[i * 7 + round_]
        for k in d:
            d[k] += 1
        total += len(d) + sum(d.values()) % 1000003
        merged = {**s, **{"x": 1, "y": 2}}
        total += len(merged)
    return total


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(80000 * scale)
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
