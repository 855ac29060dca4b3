"""arith: an integer and float arithmetic loop."""
import sys
import time


def work(n):
    acc = 0
    x = 0.5
    y = 1.0
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
        acc ^= i << 3
        x = x * 1.000001 + (i & 7) * 0.25 - x / 3.0
        y = y + (x - y) * 0.125
    return acc, x, y


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(2500000 * scale)
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
