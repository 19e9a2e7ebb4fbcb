"""A task's container as Fargate runs it, without Docker: the image's environment and user, a
read-only root filesystem, and only the task definition's volumes writable, each owned as
Fargate makes it.

Fargate's rule for a bind-mount volume without a host path (ECS developer guide, "Use bind mounts
with Amazon ECS"; aws/containers-roadmap#938, #863): the volume is empty, owned by root, mode
0755, unless the image declares ``VOLUME`` at the same container path; then the image's content
and ownership at that path are copied in. An image user other than root therefore cannot write
a scratch volume its image does not declare.

The image is read from its Dockerfile (nothing here can build it): USER, WORKDIR, ENV, VOLUME,
the COPY lines, and what its RUN lines do to the ownership of paths, for the few commands that
set it (``useradd --uid N --create-home``, ``install -d``, ``mkdir``, ``chown``, ``chmod``), on
top of what a Debian base image holds (``/tmp`` root-owned, mode 1777). A change to a declared
volume path after its ``VOLUME`` line is discarded, as Docker discards it.

Each task then runs under bubblewrap (host directories bound read-only on an empty root that is
remounted read-only, the image's working directory and Python environment read-only, one fresh
directory per volume), dropped to the image's user with ``setpriv`` rather than a user namespace:
bubblewrap's ``--uid`` maps the user to real root, which would make root-owned volumes look
writable and hide exactly the bug above.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlwf.errors import UserError
from mlwf.image import image_environment, image_tag, instructions

BASE_IMAGE_PATHS = {"/tmp": (0, 0, 0o1777)}  # what a Debian-based python image holds
HOST_SKIP = {"proc", "dev", "sys", "tmp", "root", "home", "run", "opt"}  # never bound from the host


@dataclass(frozen=True)
class PathState:
    uid: int
    gid: int
    mode: int

    def writable_by(self, uid: int, gid: int) -> bool:
        if uid == 0:
            return True
        if self.uid == uid:
            return bool(self.mode & stat.S_IWUSR)
        if self.gid == gid:
            return bool(self.mode & stat.S_IWGRP)
        return bool(self.mode & stat.S_IWOTH)

    def describe(self) -> str:
        return f"{self.uid}:{self.gid} {self.mode:04o}"


ROOT_0755 = PathState(0, 0, 0o755)


@dataclass
class Image:
    """What the Dockerfile says of the image's filesystem and process."""

    uid: int = 0
    gid: int = 0
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (source in the context, destination)
    paths: dict[str, PathState] = field(default_factory=lambda: {p: PathState(*s) for p, s in BASE_IMAGE_PATHS.items()})
    homes: dict[int, str] = field(default_factory=dict)  # uid -> home made by useradd

    @property
    def home(self) -> str:
        return self.homes.get(self.uid, "/root" if self.uid == 0 else "/")

    def volume_state(self, container_path: str) -> PathState:
        """How Fargate gives the task this volume: the image's path when declared, else root 0755."""
        path = _norm(container_path)
        if path in self.volumes:
            return self.paths.get(path, ROOT_0755)
        return ROOT_0755


def read_image(dockerfile: str) -> Image:
    image = Image(env=image_environment(dockerfile))
    for line, words in instructions(dockerfile, "USER", "WORKDIR", "VOLUME", "COPY", "RUN"):
        instruction = line.split(None, 1)[0].upper()
        if instruction == "USER":
            user, _, group = words[0].partition(":")
            image.uid = int(user)  # a name would need the image's /etc/passwd: use the uid
            image.gid = int(group) if group else image.uid
        elif instruction == "WORKDIR":
            image.workdir = _norm(words[0])
            image.paths.setdefault(image.workdir, ROOT_0755)
        elif instruction == "VOLUME":
            argument = line.split(None, 1)[1].strip()
            paths = json.loads(argument) if argument.startswith("[") else words
            image.volumes.extend(_norm(p) for p in paths)
        elif instruction == "COPY":
            *sources, destination = [w for w in words if not w.startswith("--")]
            image.copies.extend((source, destination) for source in sources)
        else:  # RUN: each command of an && chain
            command: list[str] = []
            for word in [*words, "&&"]:
                if word == "&&":
                    _apply(image, command)
                    command = []
                else:
                    command.append(word)
    return image


def _apply(image: Image, words: list[str]) -> None:
    """What one shell command of a RUN line does to ownership and modes (the commands we use)."""
    if not words:
        return
    declared = set(image.volumes)

    def touch(path: str, state: PathState) -> None:
        if _norm(path) not in declared:  # Docker discards changes to a declared volume path
            image.paths[_norm(path)] = state

    name, args = words[0], words[1:]
    if name == "useradd" and ("--create-home" in args or "-m" in args):
        uid = int(args[args.index("--uid") + 1]) if "--uid" in args else 1000
        home = f"/home/{args[-1]}"
        image.homes[uid] = home
        touch(home, PathState(uid, uid, 0o755))
    elif name in ("install", "mkdir"):
        options = _options(args, {"-o", "-g", "-m", "--mode", "--owner", "--group"})
        state = PathState(
            int(options.get("-o", options.get("--owner", 0))),
            int(options.get("-g", options.get("--group", 0))),
            int(options.get("-m", options.get("--mode", "0755")), 8),
        )
        for path in options["paths"]:
            touch(path, state)
    elif name == "chown":
        options = _options(args, set())
        owner, *paths = options["paths"]
        user, _, group = owner.partition(":")
        for path in paths:
            old = image.paths.get(_norm(path), ROOT_0755)
            touch(path, PathState(int(user), int(group) if group else old.gid, old.mode))
    elif name == "chmod":
        options = _options(args, set())
        mode, *paths = options["paths"]
        for path in paths:
            old = image.paths.get(_norm(path), ROOT_0755)
            touch(path, PathState(old.uid, old.gid, int(mode, 8)))


def _options(args: list[str], with_value: set[str]) -> dict[str, Any]:
    options: dict[str, Any] = {"paths": []}
    iterator = iter(args)
    for arg in iterator:
        if arg in with_value:
            options[arg] = next(iterator)
        elif not arg.startswith("-"):
            options["paths"].append(arg)
    return options


def _norm(path: str) -> str:
    return str(PurePosixPath("/") / path)


def unwritable_volumes(image: Image, container: dict[str, Any]) -> list[str]:
    """One line for each writable mount of ``container`` the image's user cannot write on Fargate."""
    lines = []
    for mount in container.get("mountPoints") or []:
        if mount.get("readOnly"):
            continue
        state = image.volume_state(mount["containerPath"])
        if not state.writable_by(image.uid, image.gid):
            declared = "declared" if _norm(mount["containerPath"]) in image.volumes else "not declared"
            lines.append(
                f"{container['name']}: {mount['containerPath']} is not writable by uid {image.uid} on Fargate "
                f"(the volume is {state.describe()}: VOLUME {declared} in the image)"
            )
    return lines


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
            _run([*install, str(repo)])
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
