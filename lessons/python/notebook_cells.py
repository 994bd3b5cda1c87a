#!/usr/bin/env python3
"""The notebook's own cells, timed on this machine (lessons 02-06 run them).

The lessons compare C++ with the notebook's figures, measured on its laptop
(an Intel i5-8265U). This script runs the notebook's code itself, here, at a
size that takes about a second (the lessons' 10^8 numbers take half a minute
in a Python loop), and prints what it measured as one JSON object:

    {"python": "3.11.2", "numpy": "1.24.2", "joblib": "1.2.0", "size": 15000000,
     "work": 15000000, "rows": [{"name": "python_loop", "label": "Python loop",
     "seconds": 1.02, "workers": 1, "result": 0.50001, "scales": true}, ...]}

`work` is the work done at `size` in the lesson's units (numbers summed, or
multiplications for parallel_for): a lesson scales each row that "scales" by
its own work / work. Run it by hand:  python3 notebook_cells.py mean_loop

Exit status: 0 done, 2 bad command line, 3 numpy missing, 4 joblib missing.
"""
import argparse
import json
import math
import platform
import sys
import time

try:
    import numpy as np
except ImportError:
    print("numpy is not installed (Debian: apt-get install python3-numpy)", file=sys.stderr)
    sys.exit(3)

d = None  # the notebook's global array: its functions read it, its children inherit it


# ---------------------------------------------------------------- In[4]
def mean():
    # the notebook's loop, word for word
    sum = 0
    n = d.size
    for i in range(n):
        sum += d[i]
    mean = sum / n
    return mean


# ---------------------------------------------------------------- In[5]
def mean_MP(s, e, q):
    sum = 0
    for i in range(s, e + 1):
        sum += d[i]
    mean = sum / (e - s + 1)
    q.put(mean)
    return


def two_processes(n):
    from multiprocessing import Process, Queue
    n1 = math.floor(n / 2)
    q = Queue()
    p1 = Process(target=mean_MP, args=(0, n1, q))
    p2 = Process(target=mean_MP, args=(n1 + 1, n - 1, q))
    p1.start()
    p2.start()
    p1.join()
    p2.join()
    m = 0
    while not q.empty():
        m += q.get()
    m /= 2
    return m


# ---------------------------------------------------------------- In[6]
means = [0, 0]


def mean_MT(s, e, threadNum):
    sum = 0
    for i in range(s, e + 1):
        sum += d[i]
    mean = sum / (e - s + 1)
    means[threadNum] = mean
    return


def two_threads(n):
    from threading import Thread
    n1 = math.floor(n / 2)
    t1 = Thread(target=mean_MT, args=(0, n1, 0))
    t2 = Thread(target=mean_MT, args=(n1 + 1, n - 1, 1))
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    return (means[0] + means[1]) / 2


# ---------------------------------------------------------------- In[10]
def f(i, x):
    # the notebook's f, with its x = 10000 made a parameter so that it can be scaled
    p = 1
    for j in range(x):
        for k in range(j):
            p *= k
    return math.sqrt(i ** 2)


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def make_data(n, seed):
    global d
    np.random.seed(seed % 2**32)
    d = np.random.rand(n)  # the notebook's In[3]


# The size at which the loop over d takes about `seconds`, at most max_size.
def loop_size(seconds, max_size, seed):
    probe = int(min(max_size, 200_000))
    make_data(probe, seed)
    t, _ = timed(mean)
    return int(max(1, min(max_size, probe * seconds / max(t, 1e-6))))


def row(name, label, seconds, workers, result=None, scales=True):
    return {"name": name, "label": label, "seconds": seconds, "workers": workers, "result": result, "scales": scales}


def cell_mean_loop(args):
    n = loop_size(args.seconds, args.max_size, args.seed)
    make_data(n, args.seed)
    t_loop, m = timed(mean)
    t_np, m_np = timed(lambda: d.sum() / n)  # "We can use inbuilt NumPy Sum operation for better speed"
    return n, n, [row("python_loop", "Python loop", t_loop, 1, float(m)),
                  row("python_numpy", "NumPy sum", t_np, 1, float(m_np))]


def cell_two_process(args):
    n = loop_size(args.seconds, args.max_size, args.seed)
    make_data(n, args.seed)
    t_loop, m = timed(mean)
    t_two, m_two = timed(two_processes, n)
    return n, n, [row("python_loop", "Python loop", t_loop, 1, float(m)),
                  row("python_two_process", "Python, two processes", t_two, 2, float(m_two))]


def cell_two_thread(args):
    n = loop_size(args.seconds, args.max_size, args.seed)
    make_data(n, args.seed)
    t_loop, m = timed(mean)
    t_two, m_two = timed(two_threads, n)
    return n, n, [row("python_loop", "Python loop", t_loop, 1, float(m)),
                  row("python_two_thread", "Python, two threads", t_two, 2, float(m_two))]


def need_joblib():
    try:
        import joblib
        return joblib
    except ImportError:
        print("joblib is not installed (Debian: apt-get install python3-joblib)", file=sys.stderr)
        sys.exit(4)


def cell_cache(args):
    import tempfile
    joblib = need_joblib()
    n = int(min(args.max_size, 20_000_000))

    def random_mean(n, seed):  # a slow function of its inputs, as lesson 05 caches
        np.random.seed(seed % 2**32)
        return float(np.random.rand(n).mean())

    with tempfile.TemporaryDirectory() as cachedir:
        mem = joblib.Memory(cachedir, verbose=0)
        cached = mem.cache(random_mean)
        t_compute, m = timed(cached, n, args.seed)
        hits = [timed(cached, n, args.seed) for _ in range(5)]
    t_hit = min(t for t, _ in hits)
    return n, n, [row("python_compute", "joblib.Memory, first call", t_compute, 1, m),
                  row("python_cache_hit", "joblib.Memory, cache hit", t_hit, 1, hits[0][1], scales=False)]


def cell_parallel_for(args):
    joblib = need_joblib()
    tasks = args.tasks
    # x such that the loop takes about `seconds`: the time grows with x^2
    x0 = 300
    t0, _ = timed(lambda: [f(i, x0) for i in range(tasks)])
    x = int(min(args.max_size, max(2, x0 * math.sqrt(args.seconds / max(t0, 1e-6)))))
    work = tasks * x * (x - 1) / 2
    t_loop, r = timed(lambda: [f(i, x) for i in range(tasks)])
    Parallel, delayed = joblib.Parallel, joblib.delayed
    t_proc, r_proc = timed(lambda: Parallel(n_jobs=2)(delayed(f)(i, x) for i in range(tasks)))
    t_thr, r_thr = timed(lambda: Parallel(n_jobs=2, prefer="threads")(delayed(f)(i, x) for i in range(tasks)))
    return x, work, [row("python_loop", "Python loop", t_loop, 1, float(sum(r))),
                     row("python_processes_2", "joblib, 2 processes", t_proc, 2, float(sum(r_proc))),
                     row("python_threads_2", "joblib, 2 threads", t_thr, 2, float(sum(r_thr)))]


CELLS = {"mean_loop": cell_mean_loop, "two_process": cell_two_process, "two_thread": cell_two_thread,
         "cache": cell_cache, "parallel_for": cell_parallel_for}


def main():
    parser = argparse.ArgumentParser(description="the notebook's cells, timed on this machine")
    parser.add_argument("cell", choices=sorted(CELLS))
    parser.add_argument("--seconds", type=float, default=1.0, help="about how long the loop should take")
    parser.add_argument("--max-size", type=float, default=100_000_000, help="never more numbers (or x) than this")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tasks", type=int, default=10, help="parallel_for: calls of f")
    args = parser.parse_args()
    size, work, rows = CELLS[args.cell](args)
    try:
        import joblib
        joblib_version = joblib.__version__
    except ImportError:
        joblib_version = None
    print(json.dumps({"python": platform.python_version(), "numpy": np.__version__, "joblib": joblib_version,
                      "size": size, "work": work, "rows": rows}))


if __name__ == "__main__":
    main()
