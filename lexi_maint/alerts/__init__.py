"""Telling someone how a run went: Healthchecks-style pings and the OnFailure notifier."""
