"""The memory planner: how much memory a batch needs, and what the service must give up.

    model.py    pure: each pending document's peak from the ledger's earlier peaks
                (by type and size; a default without history; OOM kills raise it)
    planner.py  pure: batch need, job unit caps, batch workers, service workers to remove
    (its [planner] section lives in lexi_maint/config/planner.py)
    gather.py   adapters: the ledger (read-only), the input folder, the service's cgroup
                (PSS of the gunicorn workers), the host's available memory

`lexi_maint/run/plan.py` plans *which documents* a run processes; this package plans *memory*.
"""
