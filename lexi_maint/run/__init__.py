"""One run of a job in the foreground: what to process, who processes it, what is kept.

job.py        lock, ledger, graph server, plan, runner: `run_job`
inventory.py  the job's documents on disk, fingerprinted (stat before hash)
plan.py       pure: which documents the run processes, given the ledger
scheduler.py  pure: which document starts next
runner.py     the worker processes: start, watch, kill, collect outcomes
outage.py     a dependency that is down pauses the run, never burns attempts
memory.py     the memory reading new work is judged by
ledger.py     the per-document ledger and the runs table (SQLite)
reconcile.py  ledger and graph checked against each other
events.py     what a run reports while it goes (plain values)
stop.py       SIGTERM/SIGINT: stop between steps
"""
