"""bigint: arithmetic on large ints (multiply, divide, modular power, shifts)."""
import sys
import time

MOD = (1 << 521) - 1


def work(n):
    total = 0
    for r in range(n):
        f = 1
        for i in range(2, 400 + r % 50):
            f *= i
        a = f * f + r
        q, rem = divmod(a, f // 3 + 7)
        total ^= q.bit_length() + rem % 1000003
        p = pow(3 + r, 10**60 + r, MOD)
        total = (total + p % 1000000007) % (1 << 61)
        x = (a >> 123) | (f << 17)
        total = (total + x.bit_count()) % (1 << 61)
    return total


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(1500 * scale))
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
