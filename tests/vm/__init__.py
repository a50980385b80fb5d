"""VM test tier: a real systemd (PID 1, D-Bus, cgroup v2) booted under qemu TCG."""
