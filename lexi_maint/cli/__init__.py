"""The `lexi-maint` command: argument parsing and output (main.py), and the commands that
need more than a call into the layers below (graph.py, doctor.py, plan.py, manpage.py)."""
