"""The bare Debian image of the install acceptance scenario (issue 9), and its local mirrors.

Usage: ``python -m tests.vm.bare build [--suite bookworm]`` (as root), or import
:func:`ensure_bare_image`.  Unlike the image of the other scenarios (image.py), this one
holds only what a minimal Debian server has: systemd, python3, make (to run ``make install``)
and the kernel; no compiler, no libgomp1, no venv module, none of lexi-maint's Python
dependencies and no apt package lists.  The guest has no network, so the build also
prepares what the guest installs from, in place of the site's mirrors:

- ``debs/``: a flat apt repository with the .debs ``make install`` asks for (the Makefile's
  ``APT_PACKAGES`` and ``PYSTEMD_BUILD_DEPS``) and their dependency closure relative to the
  image, downloaded by ``apt-get install --download-only`` in the image's own tree from the
  host's mirror.  The image's ``/etc/apt/sources.list`` names it as
  ``file:/mnt/host/debian``.
- ``wheels/``: lexi-maint's dependencies as wheels (``pip download``) plus pystemd's sdist,
  which the guest compiles as it would from PyPI.  The image's ``/etc/pip.conf`` points pip
  at ``/mnt/host/wheels``.

The test copies both into the 9p share.  Everything is cached under
``${LEXI_VM_BARE_CACHE:-/var/cache/lexi-maint/vm-bare}/<suite>-<recipe hash>/``; the hash
covers this file, image.py and the Makefile's package lists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import image as base

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = "/var/cache/lexi-maint/vm-bare"
# Debian suite -> its Python (the wheels must match the guest's interpreter, to the micro
# version: redis needs async-timeout only below 3.11.3, and bookworm has 3.11.2).
SUITES: dict[str, str] = {"bookworm": "3.11.2", "trixie": "3.13.5"}
# A minimal server: what debootstrap's minbase lacks of Debian's "standard" install that a
# server running a Python web app has (python3), plus make, which runs the installer.
BARE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "udev",
    "kmod",
    "initramfs-tools",
    "python3",
    "procps",
    "iproute2",
    "make",
)
GUEST_SHARE = "/mnt/host"
DEBS = "debian"  # names in the share
WHEELS = "wheels"
PYPI_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass(frozen=True)
class BareImage:
    image: base.VmImage
    suite: str

    @property
    def debs(self) -> Path:
        return self.image.directory / "debs"

    @property
    def wheels(self) -> Path:
        return self.image.directory / "wheels"


def makefile_list(name: str) -> tuple[str, ...]:
    """A package list of the Makefile (`NAME ?= a b c`): the image serves what it asks for."""
    found = re.search(rf"^{name}\s*\?=(.*)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    if found is None:
        raise base.VmSetupError(f"the Makefile has no {name} list")
    return tuple(found.group(1).split())


def apt_packages() -> tuple[str, ...]:
    return makefile_list("APT_PACKAGES") + makefile_list("PYSTEMD_BUILD_DEPS")


def python_requirements() -> tuple[str, ...]:
    """Wheels for `pip install '.[systemd]'` in the guest: the build backend, the project's
    dependencies, pystemd's build requirements and dependencies (pystemd itself: sdist)."""
    deps = [d for d in base._project_dependencies() if not d.startswith("pystemd")]
    return ("setuptools>=68", "wheel", "cython", "lxml", *deps)


def recipe_key(suite: str) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(base.__file__).read_bytes())
    lists = [suite, BARE_PACKAGES, base.KERNEL_PACKAGES, apt_packages(), python_requirements()]
    digest.update(json.dumps(lists).encode())
    return f"{suite}-{digest.hexdigest()[:16]}"


def cache_root() -> Path:
    return Path(os.environ.get("LEXI_VM_BARE_CACHE", DEFAULT_CACHE))


def cached_bare_image(suite: str) -> BareImage | None:
    key = recipe_key(suite)
    directory = cache_root() / key
    if (directory / "complete").is_file():
        return BareImage(base.VmImage(directory=directory, key=key), suite)
    return None


# ------------------------------------------------------------------------- build steps


def _step_debootstrap(build: base._Build, suite: str) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BARE_PACKAGES)}", suite,
           str(build.rootfs), base.host_mirror()]  # fmt: skip
    base._run(build, cmd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _step_kernel_and_debs(build: base._Build, debs: Path) -> None:
    """The kernel; then the .debs make install will want, downloaded but not installed."""
    base._chroot(build, "apt-get", "update")
    base._chroot(build, "apt-get", "install", "-y", *base.KERNEL_PACKAGES)
    base._chroot(build, "apt-get", "clean")
    base._chroot(build, "apt-get", "install", "-y", "--download-only", *apt_packages())
    archives = build.rootfs / "var/cache/apt/archives"
    debs.mkdir()
    for deb in sorted(archives.glob("*.deb")):
        shutil.move(deb, debs / deb.name)
    if not any(debs.iterdir()):
        raise base.VmSetupError(f"apt downloaded nothing for {apt_packages()}")
    base._chroot(build, "apt-get", "clean")
    # a bare server: no package lists until someone runs apt-get update
    shutil.rmtree(build.rootfs / "var/lib/apt/lists")
    (build.rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)


def _step_apt_repo(build: base._Build, debs: Path) -> None:
    """A flat repository (Packages + Release) that apt reads over the share as file:."""
    scan = subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=debs,
                          capture_output=True, check=True)  # fmt: skip
    (debs / "Packages").write_bytes(scan.stdout)
    packages = scan.stdout
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())
    release = (
        f"Origin: lexi-vmtest\nLabel: lexi-vmtest\nDate: {date}\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )
    (debs / "Release").write_text(release)
    base._write(
        build.rootfs,
        "/etc/apt/sources.list",
        "# The site's package mirror: the VM test's local repository on the 9p share.\n"
        f"deb [trusted=yes] file:{GUEST_SHARE}/{DEBS} ./\n",
    )
    for extra in (build.rootfs / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()


def _pypi_sdist(name: str, dest: Path) -> Path:
    """The newest sdist of `name` from PyPI, checked against its published sha256."""
    index = PYPI_JSON.format(name=name)
    with urllib.request.urlopen(index, timeout=60) as answer:
        release = json.load(answer)
    sdist = next(u for u in release["urls"] if u["packagetype"] == "sdist")
    with urllib.request.urlopen(urllib.parse.urljoin(index, sdist["url"]), timeout=120) as answer:
        data = answer.read()
    if hashlib.sha256(data).hexdigest() != sdist["digests"]["sha256"]:
        raise base.VmSetupError(f"{sdist['filename']}: sha256 differs from PyPI's")
    target = dest / str(sdist["filename"])
    target.write_bytes(data)
    return target


def _download_python(build: base._Build, version: str) -> str:
    """A pip whose interpreter is the guest's version where the host has one (the host's
    Debian python3 for bookworm): pip evaluates environment markers such as
    `python_full_version < "3.11.3"` against the interpreter it runs on, whatever
    --python-version says."""
    probe = "import platform; print(platform.python_version())"
    for python in ("/usr/bin/python3", sys.executable):
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        if found.stdout.strip() == version:
            venv = build.work / "download-venv"
            base._run(build, [python, "-m", "venv", str(venv)])
            return str(venv / "bin/python")
    build.log.write(f"no host python {version}: markers are evaluated for {sys.version}\n")
    return sys.executable


def _step_wheels(build: base._Build, wheels: Path, python: str) -> None:
    wheels.mkdir()
    pip = [_download_python(build, python), "-m", "pip"]
    cmd = [*pip, "download", "--quiet", "--dest", str(wheels),
           "--only-binary", ":all:", "--python-version", python,
           *python_requirements()]  # fmt: skip
    base._run(build, cmd)
    build.log.write(f"pystemd sdist: {_pypi_sdist('pystemd', wheels).name}\n")


def _step_site_config(build: base._Build) -> None:
    base._write(
        build.rootfs,
        "/etc/pip.conf",
        "# The site's Python package mirror: the VM test's wheelhouse on the 9p share.\n"
        f"[global]\nno-index = true\nfind-links = {GUEST_SHARE}/{WHEELS}\n",
    )
    # The guest's disk is a throwaway snapshot: dpkg need not fsync every unpacked file
    # (what the install block installs and runs is unchanged; under TCG each fsync is slow).
    base._write(
        build.rootfs,
        "/etc/dpkg/dpkg.cfg.d/lexi-vmtest-unsafe-io",
        "# the VM test's disk is discarded after the boot\nforce-unsafe-io\n",
    )


def _build_into(work: Path, key: str, suite: str) -> None:
    log_path = work / "build.log"
    with log_path.open("w") as log:
        build = base._Build(work=work, rootfs=work / "rootfs", log=log, timings={})
        start = time.monotonic()
        try:
            base._timed(build, "debootstrap", lambda b: _step_debootstrap(b, suite))
            base._timed(build, "configure", base._step_configure)
            with base._chroot_mounts(build):
                base._timed(
                    build, "kernel + .debs", lambda b: _step_kernel_and_debs(b, work / "debs")
                )
                base._timed(build, "units", base._step_units)
            base._timed(build, "apt repository", lambda b: _step_apt_repo(b, work / "debs"))
            base._timed(build, "wheels", lambda b: _step_wheels(b, work / "wheels", SUITES[suite]))
            base._timed(build, "site config", _step_site_config)
            base._timed(build, "finish tree", base._step_finish_tree)
            base._timed(build, "mkfs.ext4 + kernel", base._step_disk)
        except (base.VmSetupError, OSError, subprocess.SubprocessError, StopIteration) as exc:
            raise base.VmSetupError(
                f"bare VM image build failed: {exc!r}\n--- last lines of {log_path} ---\n"
                f"{base._log_tail(log_path)}"
            ) from exc
        build.timings["total"] = round(time.monotonic() - start, 1)
    base._safe_rmtree(build.rootfs)
    base._safe_rmtree(work / "download-venv")
    manifest = {"key": key, "suite": suite, "mirror": base.host_mirror(),
                "debs": sorted(p.name for p in (work / "debs").glob("*.deb")),
                "wheels": sorted(p.name for p in (work / "wheels").iterdir()),
                "timings_s": build.timings}  # fmt: skip
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (work / "complete").write_text(key + "\n")  # written last


def ensure_bare_image(suite: str = "bookworm") -> BareImage:
    """The cached bare image of `suite` with its local mirrors, built if missing."""
    if (found := cached_bare_image(suite)) is not None:
        return found
    if os.geteuid() != 0:
        raise base.VmSetupError("building the bare VM image needs root (debootstrap, chroot)")
    base.ensure_host_prereqs()
    if shutil.which("dpkg-scanpackages") is None:
        raise base.VmSetupError("dpkg-scanpackages missing: apt-get install dpkg-dev")
    root, key = cache_root(), recipe_key(suite)
    with base._cache_lock(root):
        if (found := cached_bare_image(suite)) is not None:
            return found
        for stale in [*root.glob(f".tmp-{suite}-*"), root / key]:
            base._safe_rmtree(stale)
        work = root / f".tmp-{key}-{os.getpid()}"
        work.mkdir()
        start = time.monotonic()
        try:
            _build_into(work, key, suite)
            work.rename(root / key)
        finally:
            base._safe_rmtree(work)
        base._say(f"bare image {key} built in {time.monotonic() - start:.0f} s: {root / key}")
    return BareImage(base.VmImage(directory=root / key, key=key), suite)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.vm.bare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["build", "path"])
    parser.add_argument("--suite", choices=sorted(SUITES), default="bookworm")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(cache_root() / recipe_key(args.suite))
        return 0
    try:
        start = time.monotonic()
        bare = ensure_bare_image(args.suite)
    except base.VmSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{bare.image.directory} (ready in {time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
