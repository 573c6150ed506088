"""gunicorn's settings for the portal, read from the working directory (`gunicorn -b HOST:PORT wsgi:app`).

gthread rather than sync: a webhook or page spends most of its time waiting on PostgreSQL (the
commit's WAL flush), so a few threads per worker overlap those waits on a small machine, and
keep-alive connections from webhook senders are served without a buffering proxy in front. A
worker's threads share its SQLAlchemy pool (5 connections by default), so threads stay at 4.
"""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5  # seconds an idle keep-alive connection is kept, above a sender's pause between deliveries
# gunicorn 24+ opens a control socket at one fixed path per user: several portals on one host (tests,
# benchmarks, staging next to production) would take it from each other. Nothing here uses it.
control_socket_disable = True

# With /metrics on (METRICS_TOKEN), each worker writes its figures to files in one folder that any worker
# adds up when scraped (prometheus_client's multiprocess mode). The folder is set before the workers import
# prometheus_client, emptied when gunicorn starts, and a dead worker's live gauges are dropped.
if os.environ.get("METRICS_TOKEN"):
    import glob
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="portal-metrics-"))

    def on_starting(server):
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        os.makedirs(folder, exist_ok=True)
        for stale in glob.glob(os.path.join(folder, "*.db")):  # only prometheus_client's own files
            os.remove(stale)

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
