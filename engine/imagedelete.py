"""``rmi`` / ``image rm``: which references go, whether the image goes, and the conflicts.

The rules are those of Docker 20.10's daemon (daemon/images/image_delete.go), restated:

* By **reference** (``name:tag`` or ``name@digest``): the reference is removed. Without
  ``-f`` that is refused only when it is the image's single reference (one tag, plus digests
  of that same repository) and a container (running or stopped) uses the image, since the
  image would be left dangling under it. Removing a tag also removes the digest references
  of its repository when no other tag of that repository is left. If the image keeps other
  references, that is all; otherwise the image is deleted too, but *quietly*: a container
  still using it (a running one even with ``-f``) keeps it, as a dangling image, and
  ``rmi`` still succeeds.
* By **id** (or id prefix): every reference goes and the image is deleted. A running
  container always refuses ("cannot be forced"); without ``-f`` so do a stopped container
  ("must be forced") and references in more than one repository.

Conflicts are checked before anything is removed, so a refused ``rmi`` changes nothing.
"""

from __future__ import annotations

from .engine import Engine
from .errors import Conflict
from .images import ImageStore, short_id
from .reference import familiar_name, normalize


def _is_id_prefix(image_id: str, ref: str) -> bool:
    return bool(ref) and (image_id.startswith(ref) or image_id[7:].startswith(ref))


def _repo(ref: str) -> str:
    """The repository of a stored reference: ``name`` of ``name:tag`` / ``name@digest``."""
    return ref.partition("@")[0] if "@" in ref else ref.rpartition(":")[0]


def _stored_name(ref: str) -> str:
    """``ref`` as the store keeps it: ``busybox`` -> ``busybox:latest``."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return f"{familiar_name(name)}@{digest}"
    return normalize(ref)


def _single_repository(refs: list[str]) -> bool:
    """At most one tag, and every digest in that tag's repository (Docker's
    isSingleReference); False for an image with no reference at all."""
    if len(refs) <= 1:
        return len(refs) == 1
    tags = [r for r in refs if "@" not in r]
    if len(tags) > 1:
        return False
    digest_repos = {_repo(r) for r in refs if "@" in r}
    return len(digest_repos) == 1 and _repo(tags[0] if tags else refs[0]) in digest_repos


class _Deletion:
    """One ``rmi`` argument against the store; ``lines`` is what Docker prints for it."""

    def __init__(self, engine: Engine, image_id: str) -> None:
        self.engine = engine
        self.store: ImageStore = engine.images
        self.image_id = image_id
        self.lines: list[str] = []
        users = [c for c in engine.containers.all() if c.get("Image") == image_id]
        self.running = [c["Id"] for c in users if (c.get("State") or {}).get("Running")]
        self.stopped = [c["Id"] for c in users if c["Id"] not in self.running]

    def refs(self) -> list[str]:
        return self.store.tags_of(self.image_id) + self.store.repo_digests(self.image_id)

    def conflict(self, *, hard: bool, message: str) -> Conflict:
        forced = "cannot be forced" if hard else "must be forced"
        return Conflict(
            f"conflict: unable to delete {short_id(self.image_id)} ({forced}) - {message}"
        )

    def check(self, *, force: bool, references: bool) -> Conflict | None:
        """Docker's order: running containers, then (unless forced) references and
        stopped containers."""
        if self.running:
            msg = f"image is being used by running container {self.running[0][:12]}"
            return self.conflict(hard=True, message=msg)
        if force:
            return None
        if references and self.refs():
            return self.conflict(hard=False, message="image is referenced in multiple repositories")
        if self.stopped:
            msg = f"image is being used by stopped container {self.stopped[0][:12]}"
            return self.conflict(hard=False, message=msg)
        return None

    def untag(self, ref: str) -> None:
        if "@" in ref:
            self.store.remove_repo_digest(ref)
        elif ref in self.store.tags():
            self.store.untag(ref)
        self.lines.append(f"Untagged: {ref}")
        from . import events

        # moby's ImageDelete: actor and name are the image's id
        events.emit(self.store.root, "image", "untag", self.image_id, {"name": self.image_id})

    def by_reference(self, ref: str, given: str, force: bool) -> None:
        refs = self.refs()
        if not force and _single_repository(refs) and (self.running or self.stopped):
            user = (self.running or self.stopped)[0]
            raise Conflict(
                f'conflict: unable to remove repository reference "{given}" (must force) - '
                f"container {user[:12]} is using its referenced image {short_id(self.image_id)}"
            )
        self.untag(ref)
        if "@" not in ref:
            repo = _repo(ref)
            rest = [r for r in self.refs() if _repo(r) == repo]
            if not any("@" not in r for r in rest):
                for digest_ref in rest:  # a repository's digests go with its last tag
                    self.untag(digest_ref)
        if self.refs():
            return
        # the image itself goes quietly: a container's use of it just keeps it, dangling
        if self.check(force=force, references=True) is None:
            self.delete()

    def by_id(self, force: bool) -> None:
        if _single_repository(self.refs()):
            conflict = self.check(force=force, references=False)
            if conflict:
                raise conflict
            for ref in self.refs():
                self.untag(ref)
        conflict = self.check(force=force, references=True)
        if conflict:
            raise conflict
        self.delete()

    def delete(self) -> None:
        for ref in self.refs():
            self.untag(ref)
        tops = [c["Parent"] for c in self.engine.containers.all() if c.get("Parent")]
        keep = self.store.layers_under(tops)  # a forced delete leaves containers their layers
        removed = self.store.delete_image(self.image_id, self.engine.driver, keep)
        from .orphans import sweep_images

        sweep_images(self.engine)  # what a killed load, pull or commit left
        self.lines.append(f"Deleted: {self.image_id}")
        from . import events

        events.emit(self.store.root, "image", "delete", self.image_id, {"name": self.image_id})
        self.lines.extend(f"Deleted: {chain}" for chain in removed)


def remove_image(engine: Engine, ref: str, force: bool) -> list[str]:
    """Apply one ``rmi`` argument; returns the ``Untagged:`` / ``Deleted:`` lines.

    The caller holds the image store lock exclusively.
    """
    store = engine.images
    image_id = store.resolve(ref)
    job = _Deletion(engine, image_id)
    if _is_id_prefix(image_id, ref):
        job.by_id(force)
    else:
        job.by_reference(_stored_name(ref), ref, force)
    return job.lines
