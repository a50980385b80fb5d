"""Everything that talks to systemd: D-Bus (dbus.py, the only pystemd importer), sd_notify
(notify.py), the journal (journal.py), and pure builders of unit properties (properties.py)."""
