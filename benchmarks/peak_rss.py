"""Run a command; print its peak resident set size (KiB), wall time and exit code as JSON.

It exists to be a small parent: on Linux a child's ru_maxrss also counts the pages of the process
it was forked from, so a benchmark process holding seeded data cannot measure its children itself.
The command's own output is discarded (its errors still reach stderr): stdout carries only the result.
With PEAK_RSS_TIMEOUT (seconds) set, a command still running then is killed and reported "timed_out",
with its peak so far.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
timed_out = threading.Event()
if os.environ.get("PEAK_RSS_TIMEOUT"):
    def stop() -> None:
        timed_out.set()
        process.send_signal(signal.SIGKILL)

    timer = threading.Timer(float(os.environ["PEAK_RSS_TIMEOUT"]), stop)
    timer.daemon = True
    timer.start()
_, status, usage = os.wait4(process.pid, 0)
process.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"peak_kib": usage.ru_maxrss, "seconds": time.perf_counter() - start, "exit_code": process.returncode,
                  "timed_out": timed_out.is_set()}))
