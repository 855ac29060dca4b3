"""objects: class instances, attribute access and method calls (pystone-like)."""
import sys
import time


class Record:
    def __init__(self, ident, value, link=None):
        self.ident = ident
        self.value = value
        self.link = link
        self.flag = False

    def bump(self, by):
        self.value += by
        return self.value

    @property
    def weight(self):
        return self.value * 2 + self.ident


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


class Special(Record):
    def bump(self, by):
        self.flag = not self.flag
        return super().bump(by + 1)


def work(n):
    total = 0
    for round_ in range(n):
        head = None
        for i in range(1000):
            cls = Special if i % 3 == 0 else Record
            head = cls(i, (i + round_) % 17, head if i % 50 else None)
        node = head
        while node is not None:
            total += node.bump(3)
            total += node.weight
            if node.flag:
                total += 1
            s = Slotted(node.ident, node.value)
            total += s.a - s.b
            node = node.link
        for i in range(1000):
            r = Record(i, i)
            r.bump(1)
            total += getattr(r, "value") + isinstance(r, Special)
    return total


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(700 * scale))
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
