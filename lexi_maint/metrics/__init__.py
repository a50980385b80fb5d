"""Prometheus metrics for node_exporter's textfile collector (see textfile.py)."""
