"""The image as its Dockerfile makes it (nothing here can build it), and Fargate's rule for the
ownership of its volumes: what a task's user can write.

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
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mlwf.image import image_environment, instructions

BASE_IMAGE_PATHS = {"/tmp": (0, 0, 0o1777)}  # what a Debian-based python image holds


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
