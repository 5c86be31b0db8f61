"""Podman standing in for Docker, so tests can build images and run compose.yaml for real.

No Docker engine runs on the test machines and no registry can be pulled from, so:
- `PodmanHost` runs podman with its own configuration and image storage in a temp dir (it removes every
  container, volume, image and network it made, then the dir), so it leaves nothing behind and runs beside
  other tests and other podman users;
- base images come from debootstrap (the same Debian release as this machine, from the mirror apt uses),
  imported with `podman import`, and stand in for `debian:*-slim` through the Dockerfiles' base-image
  build arguments;
- compose files run with podman-compose (installed by tests/setup-clients into .tools/podman-compose).

`unavailable_reason()` says why containers cannot run here (no podman, not root, ...); tests skip with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PODMAN_COMPOSE_CANDIDATES = [REPO_ROOT / ".tools" / "podman-compose" / "bin" / "podman-compose"]
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"

# podman's defaults fail on these machines: the default ulimits ask for more than the hard limit allows, crun
# cannot run under hybrid cgroups, and there is neither systemd nor journald. tmp_dir keeps podman's run-time
# state with the storage; netavark (with aardvark-dns) lets containers reach each other by service name.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp_dir}"

[network]
network_backend = "netavark"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""


class ContainerError(RuntimeError):
    """A podman, podman-compose or debootstrap command failed; the message has its output."""


def podman_compose_path() -> Path | None:
    for candidate in PODMAN_COMPOSE_CANDIDATES:
        if candidate.is_file():
            return candidate
    found = shutil.which("podman-compose")
    return Path(found) if found else None


def os_release() -> dict[str, str]:
    values = {}
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def unavailable_reason() -> str | None:
    """Why podman-based tests cannot run on this machine, or None when they can (as far as tools go)."""
    if os.geteuid() != 0:
        return "needs root (debootstrap and rootful podman)"
    for tool in ("podman", "debootstrap", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-packages test installs podman, runc, netavark, debootstrap, ...)"
    if podman_compose_path() is None:
        return "podman-compose is not installed (tests/setup-clients installs it into .tools/podman-compose)"
    release = os_release()
    if release.get("ID") != "debian" or not release.get("VERSION_CODENAME"):
        return f"base images are built with debootstrap from this machine's Debian release; this is {release}"
    return None


def debian_mirror() -> str:
    """The Debian archive apt uses on this machine (deb822 or one-line sources), for debootstrap.

    $SKEIN_TEST_DEBIAN_MIRROR overrides it."""
    if os.environ.get("SKEIN_TEST_DEBIAN_MIRROR"):
        return os.environ["SKEIN_TEST_DEBIAN_MIRROR"]
    codename = os_release().get("VERSION_CODENAME", "")
    sources_dir = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list")] + (sorted(sources_dir.iterdir()) if sources_dir.is_dir() else [])
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
                if "deb" in fields.get("types", []) and codename in fields.get("suites", []):
                    return fields["uris"][0]
        else:
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                # deb [options] URI SUITE COMPONENTS...
                if words[:1] == ["deb"]:
                    words = [word for word in words[1:] if not word.startswith("[") and not word.endswith("]")]
                    if len(words) >= 2 and words[1] == codename:
                        return words[0]
    return DEFAULT_DEBIAN_MIRROR


def run_bounded(command: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
    """Runs a command in its own process group; on timeout the whole group is killed. Output is captured."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, cwd=cwd, start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        # Timeout or interruption: podman-compose starts podman processes, so end the group, not just the child.
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    result = subprocess.CompletedProcess(command, process.returncode, output, None)
    if check and result.returncode != 0:
        raise ContainerError(f"{' '.join(command)} exited with {result.returncode}:\n{output[-6000:]}")
    return result


class PodmanHost:
    """podman and podman-compose with configuration, storage and state of their own under `root`."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="skein-podman-"))
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        containers_conf = self.root / "containers.conf"
        storage_conf = self.root / "storage.conf"
        containers_conf.write_text(CONTAINERS_CONF.format(tmp_dir=self.root / "tmp"))
        storage_conf.write_text(STORAGE_CONF.format(graphroot=self.root / "storage", runroot=self.root / "run"))
        self.env = dict(os.environ)
        self.env["CONTAINERS_CONF"] = str(containers_conf)
        self.env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
        # Networks live in the machine-wide network directory (bridge names and subnets must not clash with
        # other podman users); close() removes the ones made through this host.
        self.network_names: set[str] = set()
        self.compose_path = podman_compose_path()

    # -- plain podman ----------------------------------------------------------------------------------
    def podman(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return run_bounded(["podman", *args], timeout, env=self.env, check=check)

    def check_can_run_containers(self, image: str) -> str | None:
        """None if a container of `image` runs here, else podman's explanation."""
        result = self.podman("run", "--rm", "--network=none", image, "true", timeout=120, check=False)
        if result.returncode != 0:
            return f"podman cannot run a container here: {result.stdout.strip()[-2000:]}"
        return None

    def import_debian_base(self, tag: str, timeout: float = 600) -> str:
        """Builds a minimal Debian image of this machine's release with debootstrap and imports it as `tag`."""
        codename = os_release()["VERSION_CODENAME"]
        rootfs = self.root / "debootstrap-rootfs"
        tarball = self.root / "debootstrap-rootfs.tar"
        try:
            run_bounded(["debootstrap", "--variant=minbase", codename, str(rootfs), debian_mirror()], timeout)
            run_bounded(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], timeout)
            self.podman("import", str(tarball), tag, timeout=timeout)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
            tarball.unlink(missing_ok=True)
        return tag

    def build(self, context: Path, tag: str, containerfile: Path | None = None, target: str | None = None,
              build_args: dict[str, str] | None = None, timeout: float = 600) -> str:
        # Docker's image format keeps HEALTHCHECK (the OCI format drops it).
        command = ["build", "--format", "docker", "--tag", tag]
        if containerfile is not None:
            command += ["--file", str(containerfile)]
        if target is not None:
            command += ["--target", target]
        for name, value in (build_args or {}).items():
            command += ["--build-arg", f"{name}={value}"]
        self.podman(*command, str(context), timeout=timeout)
        return tag

    def container_name(self, project: str, service: str) -> str:
        """The one container of a compose service (podman-compose and Docker Compose name them differently)."""
        result = self.podman(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}",
        )
        names = result.stdout.split()
        if len(names) != 1:
            raise ContainerError(f"expected one container of {project}/{service}, found {names}")
        return names[0]

    def inspect(self, container: str, template: str) -> str:
        return self.podman("inspect", "--format", template, container).stdout.strip()

    # -- compose ---------------------------------------------------------------------------------------
    def compose(self, project: str, files: list[Path], *args: str, env: dict[str, str] | None = None,
                timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        if self.compose_path is None:
            raise ContainerError("podman-compose is not installed")
        # podman-compose names the project's default network <project>_default.
        self.network_names.add(f"{project}_default")
        command = [str(self.compose_path), "--project-name", project]
        for path in files:
            command += ["--file", str(path)]
        return run_bounded([*command, *args], timeout, env={**self.env, **(env or {})}, cwd=files[0].parent,
                           check=check)

    # -- clean-up --------------------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Removes everything this host made and its directory; returns the problems met (best effort)."""
        problems = []
        steps = [
            ["rm", "--all", "--force", "--time", "0"],
            ["pod", "rm", "--all", "--force"],
            ["volume", "rm", "--all", "--force"],
            ["rmi", "--all", "--force"],
        ]
        steps += [["network", "rm", "--force", name] for name in sorted(self.network_names)]
        for step in steps:
            try:
                result = self.podman(*step, timeout=120, check=False)
            except subprocess.TimeoutExpired:
                problems.append(f"podman {' '.join(step)} timed out")
                continue
            if result.returncode != 0 and "no such" not in result.stdout.lower() and "not found" not in (
                result.stdout.lower()
            ):
                problems.append(f"podman {' '.join(step)} exited {result.returncode}: {result.stdout[-1000:]}")
        # Storage mounts still under the root (deepest first) would make the directory impossible to remove.
        for mount_point in sorted(self._mounts_under_root(), key=len, reverse=True):
            result = run_bounded(["umount", "--lazy", mount_point], 60, check=False)
            if result.returncode != 0:
                problems.append(f"umount {mount_point}: {result.stdout}")
        for _ in range(3):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                break
            time.sleep(1)
        else:
            problems.append(f"could not remove {self.root}")
        return problems

    def _mounts_under_root(self) -> list[str]:
        prefix = str(self.root) + "/"
        mounts = []
        with open("/proc/self/mounts") as mounts_file:
            for line in mounts_file:
                mount_point = line.split()[1].replace("\\040", " ")
                if mount_point.startswith(prefix):
                    mounts.append(mount_point)
        return mounts
