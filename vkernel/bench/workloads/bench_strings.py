"""strings: str building, formatting, split, join, replace and search."""
import hashlib
import sys
import time


def work(n):
    digest = hashlib.sha256()
    count = 0
    for r in range(n):
        parts = ["item-%d:%s" % (i, "ab" * (i % 5)) for i in range(50)]
        line = ",".join(parts)
        line = line.replace("ab", "xyz").upper()
        fields = line.split(",")
        count += sum(len(f) for f in fields)
        count += line.find("ITEM-4") + line.count("XYZ")
        text = f"{r:08d}|{line[:40]:<48}|{count:>12}|{r / 7:.5f}"
        words = " ".join(f.lower().strip("-") for f in fields[::3])
        count += len(words.title().split())
        if r % 50 == 0:
            digest.update(text.encode())
            digest.update(words.encode())
    return count, digest.hexdigest()[:16]


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(20000 * scale)
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
