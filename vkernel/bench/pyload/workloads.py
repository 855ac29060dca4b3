"""CPU-bound workloads for `compat bench python`.

Run as: python3.11 workloads.py NAME [REPEAT]
Prints one line: "NAME seconds checksum". The time covers the workload
only (not interpreter start-up); the checksum must be the same on every
engine, so a build that computes differently is caught, not timed.
"""
import json
import re
import sys
import time


def arith(n=800_000):
    acc, x = 0, 1
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        acc += (x % 97) * (i & 7) - (x >> 20)
    f = 0.0
    for i in range(1, n // 4):
        f += 1.0 / (i * i)
    return acc + int(f * 1e6)


def calls():
    def fib(k):
        return k if k < 2 else fib(k - 1) + fib(k - 2)
    return fib(28)


def dicts(n=100_000):
    d = {}
    for i in range(n):
        d["k%d" % (i * 7919 % n)] = i
    total = 0
    for i in range(0, n, 3):
        total += d.get("k%d" % i, 0)
    return total + len(d)


def strings(n=150_000):
    parts = []
    for i in range(n):
        s = "item-%05d" % i
        parts.append(s.upper().replace("-", "_")[::-1])
    text = ",".join(parts)
    return len(text.split(",")) + text.count("M") + sum(map(len, parts))


def sort(n=100_000):
    x, data = 12345, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        data.append(x >> 33)
    data.sort()
    words = sorted(str(v) for v in data[:20_000])
    return data[n // 2] + len(words[0])


def regex(n=40_000):
    text = " ".join("user%d@host%d.example word%d 2026-%02d-%02d" % (i, i % 13, i, i % 12 + 1, i % 28 + 1)
                    for i in range(n))
    emails = re.findall(r"[a-z0-9]+@[a-z0-9]+\.example", text)
    dates = re.findall(r"(\d{4})-(\d{2})-(\d{2})", text)
    return len(emails) + sum(int(m) for _, m, _ in dates)


def jsons(n=3_000):
    doc = [{"id": i, "name": "n%d" % i, "tags": ["a", "b", str(i)], "score": i * 0.5,
            "nested": {"x": i, "y": [i, i + 1]}} for i in range(n)]
    total = 0
    for _ in range(5):
        s = json.dumps(doc)
        back = json.loads(s)
        total += len(s) + back[-1]["nested"]["y"][1]
    return total


class Record:
    __slots__ = ("ident", "kind", "value", "next")

    def __init__(self, ident, kind, value, nxt):
        self.ident, self.kind, self.value, self.next = ident, kind, value, nxt

    def step(self, k):
        self.value = (self.value * 3 + k + self.ident) % 1000003
        return self.value & 1


def objects(n=1_000_000):
    head = None
    for i in range(50):
        head = Record(i, i % 3, i, head)
    odd = 0
    r = head
    for k in range(n):
        odd += r.step(k)
        r = r.next or head
    return odd


WORKLOADS = {f.__name__: f for f in (arith, calls, dicts, strings, sort, regex, jsons, objects)}


def main():
    name = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    fn = WORKLOADS[name]
    best, result = None, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    print("%s %.6f %d" % (name, best, result))


if __name__ == "__main__":
    main()
