"""What a run tells people and machines: the live view, the record, the alerts.

progress.py   lines or a live bar for a person at a terminal
reporters.py  sd_notify STATUS=, the journal (LEXI_OUTCOME), the run's event file
status.py     `lexi-maint status`: a job's documents from the ledger
history.py    `lexi-maint runs`: the run history
metrics.py    Prometheus textfile metrics
ping.py       Healthchecks-style pings
notify.py     the OnFailure notifier (lexi-notify@.service)
"""
