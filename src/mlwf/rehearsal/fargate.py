"""A task's container as Fargate runs it, without Docker: the image's environment and user (read
from its Dockerfile: `mlwf.rehearsal.dockerfile`), a read-only root filesystem, and only the task
definition's volumes writable, each owned as Fargate makes it.

Each task runs under bubblewrap (host directories bound read-only on an empty root that is
remounted read-only, the image's working directory and Python environment read-only, one fresh
directory per volume), dropped to the image's user with ``setpriv`` rather than a user namespace:
bubblewrap's ``--uid`` maps the user to real root, which would make root-owned volumes look
writable and hide exactly the volume bug `mlwf.rehearsal.dockerfile` describes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.image import image_tag
from mlwf.rehearsal.dockerfile import Image, read_image

HOST_SKIP = {"proc", "dev", "sys", "tmp", "root", "home", "run", "opt"}  # never bound from the host


def require_sandbox() -> None:
    """bubblewrap and setpriv, as root (to drop to the image's user): one line otherwise."""
    missing = [tool for tool in ("bwrap", "setpriv") if shutil.which(tool) is None]
    if missing:
        raise UserError(
            f"the rehearsal runs tasks as Fargate does and needs {' and '.join(missing)} "
            "(Debian: apt-get install bubblewrap util-linux)"
        )
    if os.geteuid() != 0:
        raise UserError("the rehearsal runs tasks as the image's user and must start as root (it drops to it)")


@dataclass
class Sandbox:
    """Runs a task's command inside the image: ``python`` is the image's environment (a venv whose
    interpreter may live under a private folder), ``workdir_tree`` the image's working directory."""

    image: Image
    venv: Path
    workdir_tree: Path
    volumes_root: Path

    def environment(self) -> dict[str, str]:
        """What the image's process starts with before the task definition's environment."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": self.image.home,
            "LANG": "C.UTF-8",
            **self.image.env,
        }

    def command(self, task_id: str, container: dict[str, Any], command: list[str]) -> list[str]:
        """bwrap + setpriv around ``command``; each of the container's volumes a fresh folder."""
        argv = ["bwrap"]  # no --die-with-parent: it fires when the starting thread (a request's) ends
        for entry in sorted(Path("/").iterdir()):
            if entry.name in HOST_SKIP:
                continue
            if entry.is_symlink():
                argv += ["--symlink", os.readlink(entry), str(entry)]
            elif entry.is_dir():
                argv += ["--ro-bind", str(entry), str(entry)]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--perms", "1777", "--tmpfs", "/dev/shm"]  # as Docker gives it (multiprocessing's semaphores)
        argv += [*_folders([Path("/root"), Path("/")]), *_folders([Path("/home"), Path("/")])]
        argv += self._interpreter()
        argv += [*_folders(Path(self.image.workdir).parents), "--ro-bind", str(self.workdir_tree), self.image.workdir]
        for mount in container.get("mountPoints") or []:
            source = self.volumes_root / task_id / mount["sourceVolume"]
            source.mkdir(parents=True)
            state = self.image.volume_state(mount["containerPath"])
            os.chown(source, state.uid, state.gid)
            source.chmod(state.mode)
            argv += ["--ro-bind" if mount.get("readOnly") else "--bind", str(source), mount["containerPath"]]
        argv += ["--remount-ro", "/", "--chdir", self.image.workdir]
        user = ["setpriv", f"--reuid={self.image.uid}", f"--regid={self.image.gid}", "--clear-groups", "--"]
        return [*argv, "--", *user, *command]

    def _interpreter(self) -> list[str]:
        """The venv and the interpreter it links to, made visible even under a 0700 folder."""
        prefix = Path(sys.base_prefix)
        return [
            *_folders(prefix.parents),
            *("--ro-bind", str(prefix), str(prefix)),
            *_folders(self.venv.parents),
            *("--ro-bind", str(self.venv), str(self.venv)),
        ]


def _folders(parents: Any) -> list[str]:
    """bwrap arguments making each folder (outermost first, "/" left out) exist with mode 0755:
    a folder bwrap makes on its own is 0700, which the image's user could not pass through."""
    argv = []
    for parent in reversed(list(parents)[:-1]):
        argv += ["--perms", "0755", "--dir", str(parent)]
    return argv


def prepare(repo: Path, work: Path, dockerfile: Path, requirements: Path) -> Sandbox:
    """The image, as far as a task needs it: its Python environment from exactly its requirements
    and the project (kept under /var/tmp, one per image tag), and its working directory as its
    COPY lines lay it out."""
    require_sandbox()
    image = read_image(dockerfile.read_text())
    venv = _image_venv(repo, requirements)
    tree = work / "image" / image.workdir.strip("/")
    for source, destination in image.copies:
        target = tree / destination if not destination.startswith("/") else work / "image" / destination.strip("/")
        origin = repo / source
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target = target / origin.name if destination.endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    for path in [work, *work.parents]:  # the task's user reaches its image through these
        if path == Path("/"):
            break
        path.chmod(path.stat().st_mode | 0o055)
    for folder in (work / "image").rglob("*"):
        folder.chmod(folder.stat().st_mode | (0o055 if folder.is_dir() else 0o044))
    return Sandbox(image, venv, tree, work / "volumes")


def _image_venv(repo: Path, requirements: Path) -> Path:
    """One environment per image (its tag is a digest of everything the image is built from) and
    interpreter, built once and never changed after (rehearsals running at once share it),
    bytecode compiled as pip compiles it in the image; those unused for two days are removed."""
    key = hashlib.sha256(f"{image_tag(repo)} {sys.version} {sys.base_prefix}".encode()).hexdigest()[:16]
    root = Path("/var/tmp") / f"mlwf-image-{key}"
    root.mkdir(mode=0o755, exist_ok=True)
    venv, done = root / "venv", root / ".complete"
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    python = str(venv / "bin" / "python")
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            interpreter = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
            _run([uv, "venv", "-q", "--python", str(interpreter), str(venv)])
            install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", python, "--no-deps"]
            _run([*install, "--require-hashes", "-r", str(requirements)])
            _run([*install, "--no-build-isolation", str(repo)])  # the backend from the requirements
            subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
            done.write_text("")
        os.utime(done)
    _prune(root)
    return venv


def _prune(keep: Path, unused_for_s: float = 2 * 86400) -> None:
    for other in Path("/var/tmp").glob("mlwf-image-*"):
        marker = other / ".complete"
        if other != keep and marker.exists() and time.time() - marker.stat().st_mtime > unused_for_s:
            shutil.rmtree(other, ignore_errors=True)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise UserError(f"the image's environment could not be built ({argv[1]} {argv[2]}): {last}")
