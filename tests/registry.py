"""Images pushed to an emulated ECR repository as the build pushes them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def push_image(ecr: Any, repository: str, tag: str) -> str:
    """A manifest of one layer named after ``tag`` (moto derives the digest from the layers'
    digests, and picks one of 101 at random for a manifest without layers); its digest."""
    layer = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": layer}],
    }
    image = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    return str(image["image"]["imageId"]["imageDigest"])
