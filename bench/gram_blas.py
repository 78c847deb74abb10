"""numpy's time for the Gram matrix X Xᵀ of the same float64 points as `bfl-node bench aggregate
--reference-blas` (argv: raw float64 file, n, dim, runs). Prints one JSON line: the median ms
after one warm-up, the median CPU ms of all its threads, numpy's version and the BLAS library numpy has loaded. A reference for the
benchmark only: never a dependency of the product."""
import json
import sys
import time

import numpy as np

path, n, dim, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = np.fromfile(path, dtype=np.float64).reshape(n, dim)
times = []
cpu = []
for _ in range(runs + 1):
    t = time.perf_counter()
    c = time.process_time()  # every thread of the process: OpenBLAS's too
    g = x @ x.T
    cpu.append((time.process_time() - c) * 1000)
    times.append((time.perf_counter() - t) * 1000)
times = sorted(times[1:])
cpu = sorted(cpu[1:])
with open("/proc/self/maps") as maps:
    libs = sorted({line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line})
print(json.dumps({"ms": times[len(times) // 2], "cpuMs": cpu[len(cpu) // 2], "numpy": np.__version__, "blas": libs[0] if libs else "unknown"}))
