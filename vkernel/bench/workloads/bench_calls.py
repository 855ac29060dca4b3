"""calls: recursive Python function calls (fib), with positional and keyword arguments."""
import sys
import time


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def tak(x, y, z, depth=0):
    if y >= x:
        return z
    return tak(tak(x - 1, y, z, depth=depth + 1), tak(y - 1, z, x, depth=depth + 1),
               tak(z - 1, x, y, depth=depth + 1), depth=depth + 1)


def work(n):
    total = 0
    for i in range(n):
        total += fib(20 + i % 3)
        total += tak(12, 8, 4)
    return total


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(200 * scale))
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
