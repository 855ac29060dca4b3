"""regex: re search, findall, sub and split over a generated text."""
import random
import re
import sys
import time

WORDS = ["alpha", "beta", "gamma", "delta", "error", "warning", "info", "user42", "host-7",
         "2026-12-01", "10.0.0.1", "foo@example.org", "value=123", "path/to/file.txt"]


def text(rng, lines):
    out = []
    for i in range(lines):
        out.append(" ".join(rng.choice(WORDS) for _ in range(12)) + " #%d" % i)
    return "\n".join(out)


def work(n):
    rng = random.Random(7)
    body = text(rng, 400)
    date = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
    email = re.compile(r"[\w.]+@[\w.]+\.\w+")
    kv = re.compile(r"(\w+)=(\d+)")
    ip = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
    level = re.compile(r"^.*\b(error|warning)\b.*$", re.M)
    total = 0
    for r in range(n):
        total += len(date.findall(body))
        total += len(email.findall(body))
        total += sum(int(v) for _, v in kv.findall(body))
        total += len(ip.findall(body))
        total += len(level.findall(body))
        total += len(re.sub(r"\s+", " ", body))
        total += len(re.split(r"[#\n]", body))
        m = re.search(r"user(\d+) host-(\d)", body)
        if m:
            total += int(m.group(1)) + int(m.group(2))
    return total


scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = max(1, int(60 * scale))
start = time.perf_counter()
result = work(n)
elapsed = time.perf_counter() - start
print("checksum", result)
print("seconds", elapsed)
