"""Run a command; print its peak resident set size (KiB), wall time and exit code as JSON.

It exists to be a small parent: on Linux a child's ru_maxrss also counts the pages of the process
it was forked from, so a benchmark process holding seeded data cannot measure its children itself.
The command's own output is discarded (its errors still reach stderr): stdout carries only the result.
"""
import json
import os
import subprocess
import sys
import time

start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
process.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"peak_kib": usage.ru_maxrss, "seconds": time.perf_counter() - start, "exit_code": process.returncode}))
