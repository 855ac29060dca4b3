#!/usr/bin/env python3
"""servicetree.py N C SOCKET -- SERVE-COMMAND... --- CLIENT-COMMAND...

CPU per call and memory of a compat serve process tree: starts the service
(SERVE-COMMAND, which listens on SOCKET), waits for the socket and 3 s more,
makes N calls with CLIENT-COMMAND, C at once (batches of C), and prints the
tree's CPU per call (utime+stime of the service and its live descendants,
plus what reaped ones left in cutime/cstime), the calls' wall times, and
the tree's peak RSS and PSS (smaps_rollup, sampled every 50 ms)."""
import os, subprocess, sys, time, threading
tick = os.sysconf("SC_CLK_TCK")
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fs = s[s.rindex(")")+2:].split()
    return fs  # fs[0] is state (field 3)
def kids(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return out
def tree(pid):
    res, todo = [], [pid]
    while todo:
        p = todo.pop(); res.append(p); todo += kids(p)
    return res
def cpu(root):
    total = 0
    for p in tree(root):
        try:
            fs = stat(p)
        except FileNotFoundError:
            continue
        # utime stime cutime cstime: fields 14-17, fs index 11-14
        total += sum(int(x) for x in fs[11:15])
    return total / tick
def mem(root):
    rss = pss = 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"): rss += int(line.split()[1])
                    elif line.startswith("Pss:"): pss += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return rss, pss
n = int(sys.argv[1]); conc = int(sys.argv[2]); sock = sys.argv[3]
i = sys.argv.index("--"); j = sys.argv.index("---")
serve = sys.argv[i+1:j]; client = sys.argv[j+1:]
if os.path.exists(sock): os.unlink(sock)
srv = subprocess.Popen(serve, stderr=open(os.devnull, "w") if not os.environ.get("SERVE_LOG") else open(os.environ["SERVE_LOG"], "a"))
for _ in range(600):
    if os.path.exists(sock): break
    time.sleep(0.05)
time.sleep(3)  # the first instance process loads its code
peak = [0, 0]; stop = False
def sample():
    while not stop:
        r, p = mem(srv.pid)
        peak[0] = max(peak[0], r); peak[1] = max(peak[1], p)
        time.sleep(0.05)
th = threading.Thread(target=sample); th.start()
c0 = cpu(srv.pid); t0 = time.time(); fails = 0
lat = []
def one():
    global fails
    s = time.time()
    r = subprocess.run(client, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lat.append(time.time() - s)
    if r.returncode != 0: fails += 1
done = 0
while done < n:
    ts = [threading.Thread(target=one) for _ in range(min(conc, n - done))]
    for t in ts: t.start()
    for t in ts: t.join()
    done += len(ts)
wall = time.time() - t0
time.sleep(0.5)
c1 = cpu(srv.pid)
stop = True; th.join()
srv.terminate(); srv.wait()
lat.sort()
print(f"calls {n} at {conc} at once: service tree CPU {c1-c0:.2f} s = {1000*(c1-c0)/n:.1f} ms/call; wall {wall:.1f} s ({n/wall:.1f} calls/s); "
      f"client p50 {1000*lat[len(lat)//2]:.1f} ms p99 {1000*lat[min(len(lat)-1, int(len(lat)*0.99))]:.1f} ms; "
      f"peak tree RSS {peak[0]/1024:.0f} MiB, PSS {peak[1]/1024:.0f} MiB; failures {fails}")
