"""sort: list.sort and sorted over seeded random ints, tuples and strings."""
import random
import sys
import time


def work(n):
    rng = random.Random(20261201)
    total = 0
    for r in range(3):
        ints = [rng.randrange(1 << 30) for _ in range(n)]
        a = sorted(ints)
        total += a[n // 2] + a[n // 4]
        ints.sort(reverse=True)
        total += ints[n // 3]
        pairs = [(x % 1000, x) for x in ints[: n // 2]]
        pairs.sort()
        total += pairs[len(pairs) // 2][1]
        keyed = sorted(ints[: n // 2], key=lambda x: (x % 97, -x))
        total += keyed[7]
        strs = sorted(str(x) for x in ints[: n // 4])
        total += int(strs[len(strs) // 2])
    return total % 1000000007


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(60000 * scale)
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
