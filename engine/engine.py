"""The engine: images + storage driver + spec + runtime, composed for the CLI's commands.

A container's life on disk: its record is written (State "created", owned by this process)
*before* its writable layer is made, so whatever a SIGKILL interrupts, the next pydock
command finds the record and can undo the rest (``reconcile``). Driver state is only ever
touched through the driver interface.
"""

from __future__ import annotations

# First, so its import time marks where pydock's own imports begin (bench phases).
from . import trace  # isort: skip

import os
import signal
import sys
from pathlib import Path

from ..cgroupfs import own_paths
from ..drivers import registry
from ..drivers.base import Driver, DriverError, DriverOptions
from . import containers as cstore
from . import events, prestart
from . import spec as specmod
from .client import DEFAULT_ROOT
from .containers import ContainerStore, alive, me, now
from .errors import Conflict, EngineError, ImageNotFound, InvalidInput, NotFound
from .fsutil import read_json, write_json
from .images import ImageStore, short_id, store_name

LOST_EXIT_CODE = 255  # Docker reports containers lost with their engine as Exited (255)


def _port_bindings(publish: list[str]) -> dict:
    from .network.manager import port_bindings

    return port_bindings(publish)


def _exposed(image_cfg: dict, opts: specmod.RunOptions) -> dict:
    """Config.ExposedPorts: the image's, --expose's and -p's ports (Docker lists all
    three; omitted when there are none, as Docker's JSON omits it)."""
    ports = dict(image_cfg.get("ExposedPorts") or {})
    ports.update(opts.expose)
    if opts.publish:
        ports.update(dict.fromkeys(_port_bindings(opts.publish), {}))
    return {"ExposedPorts": ports} if ports else {}


#: drivers opened ahead by a start worker: (absolute root, name) -> driver (no options)
_preopened: dict[tuple[str, str], Driver] = {}


def preopen_driver(root: str) -> None:
    """Open ``root``'s storage drivers ahead of the run that will use one (a start worker,
    engine/starter.py): opening reads the probe cache, sweeps temp dirs and loads the
    driver's modules, 2 to 10 ms the first time in a process. The default driver, and
    every builtin one whose layer store the root already has (a ``--storage-driver``
    switch between runs). A run asking for one with no storage options takes it."""
    eng = Engine(root)
    home = str(eng.root.absolute())
    try:
        wanted = [eng.driver_name()]
    except EngineError:
        wanted = []  # the run reports what is wrong with the driver choice
    for name in registry.PRIORITY:
        try:
            store = getattr(registry.get_class(name), "layer_store", None) or name
        except DriverError:
            continue
        if name not in wanted and (eng.root / store).is_dir():
            wanted.append(name)
    for name in wanted:
        try:
            _preopened[(home, name)] = registry.open_driver(name, eng.root, DriverOptions({}))
        except (DriverError, OSError):
            pass  # unusable here: the run that asks for it says why


class Engine:
    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        storage_driver: str | None = None,
        storage_opts: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.images = ImageStore(self.root)
        self.containers = ContainerStore(self.root)
        self.explicit_driver = storage_driver
        self.storage_opts = storage_opts or {}
        self._drivers: dict[str, Driver] = {}
        self._default: str | None = None
        self.choice_reasons: dict[str, str] = {}
        # create(keep_mounted=True): container id -> (record, bundle) still to write (see
        # flush_created)
        self._unsaved: dict[str, tuple[dict, dict]] = {}
        self._daemon: dict | None = None

    # -- storage drivers ---------------------------------------------------------------
    def driver_name(self) -> str:
        """Explicit ``--storage-driver`` > ``<root>/daemon.json`` > the automatic choice."""
        if self._default is None:
            name = self.explicit_driver
            if not name:
                try:
                    name = read_json(self.root / "daemon.json").get("storage-driver")
                except (FileNotFoundError, ValueError, AttributeError):
                    name = None
            try:
                self._default, self.choice_reasons = registry.choose(self.root, name)
            except DriverError as e:
                raise EngineError(str(e), 125) from None
        return self._default

    def driver(self, name: str | None = None) -> Driver:
        name = name or self.driver_name()
        drv = self._drivers.get(name)
        if drv is None and not self.storage_opts:
            drv = _preopened.pop((str(self.root.absolute()), name), None)
            if drv is not None:
                self._drivers[name] = drv
        if drv is None:
            try:
                drv = registry.open_driver(name, self.root, DriverOptions(dict(self.storage_opts)))
            except DriverError as e:
                # A layer store named by its records (rmi, save) may be served by the chosen
                # driver where its own cannot run: fuse-union mounts overlay2's store.
                chosen = self.driver() if name != self.driver_name() else None
                if chosen is None or store_name(chosen) != name:
                    msg = f"error initializing storage driver {name}: {e}"
                    raise EngineError(msg, 125) from None
                drv = chosen
            self._drivers[name] = drv
        return drv

    # -- images ------------------------------------------------------------------------
    def ensure_default_image(self, ref: str, progress) -> str | None:
        """Build the embedded busybox image when ``ref`` names it and it is missing."""
        from . import default_image
        from .reference import normalize

        try:
            if normalize(ref) != default_image.DEFAULT_REF:
                return None
        except EngineError:
            return None
        with self.images.lock:
            image_id = self.images.lookup(ref)
            if image_id:
                return image_id
            progress(f"Unable to find image '{default_image.DEFAULT_REF}' locally")
            config, layer = default_image.build()
            import io

            image_id = self.images.add_image(
                config, lambda _i: io.BytesIO(layer), [default_image.DEFAULT_REF], self.driver()
            )
            progress(f"{default_image.DEFAULT_REF}: built from the host's static busybox")
            return image_id

    # -- containers --------------------------------------------------------------------
    def create(
        self,
        image_ref: str,
        opts: specmod.RunOptions,
        *,
        name: str | None = None,
        auto_remove: bool = False,
        progress=None,
        keep_mounted: bool = False,
        extra: dict | None = None,
    ) -> dict:
        """Make a container: record, name, writable layer and its OCI bundle.

        ``keep_mounted`` leaves the root mounted for an immediate start (``run``), which
        saves an unmount and a mount on the start path.
        """
        image_id = self.images.lookup(image_ref)
        if image_id is None and progress is not None:
            image_id = self.ensure_default_image(image_ref, progress)
        if image_id is None:
            raise ImageNotFound(f"No such image: {image_ref}", 125)  # the CLI pulls it
        driver = self.driver()
        cid = prestart.container_id()
        # The shared lock pins the image: rmi takes it exclusively and checks containers.
        self.images.lock.acquire(shared=True)
        vlock = None  # pins the container's volumes until its record names them
        try:
            if self.images.lookup(image_id) is None:
                raise NotFound(f"No such image: {image_ref}", 125)
            image_config = self.images.config(image_id)
            trace.mark("image")
            if opts.mounts or (image_config.get("config") or {}).get("Volumes"):
                from .volumes import attach_for

                vlock = attach_for(self.root, opts, image_config)
            rec = self._record(cid, image_ref, image_id, image_config, opts, driver.name,
                               auto_remove)  # fmt: skip
            for key, more in (extra or {}).items():  # lifecycle flags: Tty, RestartPolicy...
                rec[key].update(more)
            self._log_config(rec)
            image_health = (image_config.get("config") or {}).get("Healthcheck")
            if image_health or rec["Config"].get("Healthcheck"):
                from .health import merge

                merged = merge(rec["Config"].get("Healthcheck"), image_health)
                rec["Config"].pop("Healthcheck", None)
                if merged:
                    rec["Config"]["Healthcheck"] = merged
            self.containers.add(rec, name)  # staged, then renamed into place whole
        finally:
            self.images.lock.release()
            if vlock is not None:
                vlock.release()
        trace.mark("record")
        try:
            top = self._layers_for(image_id, driver)
            rec["Parent"] = top
            driver.create_rw(cid, top, ephemeral=auto_remove)
            rootfs = driver.get(cid)
            trace.mark("layer")
            if opts.mounts:
                from .volumes import copy_image_content

                copy_image_content(opts.mounts, rootfs)
            try:
                bundle = specmod.build(image_config, opts, rootfs, cid)
                if opts.network in ("none", "host"):
                    from .network import etcfiles

                    cdir = self.containers.path(cid)
                    etcfiles.write_unnetworked(cdir, opts.network, rec["Config"]["Hostname"],
                                               rec["HostConfig"])  # fmt: skip
                    specmod.with_etc_files(bundle, {f: str(cdir / f) for f in etcfiles.FILES})
            finally:
                if not keep_mounted:
                    driver.put(cid)
            rec["Path"], rec["Args"] = bundle["process"]["args"][0], bundle["process"]["args"][1:]
            del rec["Creating"]
            if keep_mounted:
                # An immediate start writes the bundle and record while the container's
                # init builds its root (flush_created): the two overlap.
                self._unsaved[cid] = (rec, bundle)
            else:
                rec["State"]["Owner"] = None
                self._save_created(rec, bundle)
            trace.mark("created")
        except BaseException:
            self._discard(rec)
            raise
        events.container(self.root, rec, "create")
        return rec

    def daemon_config(self) -> dict:
        """``<root>/daemon.json`` (empty when missing or unreadable, as driver_name)."""
        if self._daemon is None:
            try:
                self._daemon = read_json(self.root / "daemon.json")
            except (FileNotFoundError, ValueError):
                self._daemon = {}
            if not isinstance(self._daemon, dict):
                self._daemon = {}
        return self._daemon

    def _log_config(self, rec: dict) -> None:
        """HostConfig.LogConfig from the flags (``extra``) and daemon.json's defaults,
        checked (engine/logconfig.py); LogPath is json-file's only, as in Docker."""
        flags = rec["HostConfig"].pop("LogConfig", None)
        daemon = self.daemon_config()
        if flags or "log-driver" in daemon or "log-opts" in daemon:
            from .logconfig import resolve

            cfg = resolve(flags, daemon)
        else:
            cfg = {"Type": "json-file", "Config": {}}
        rec["HostConfig"]["LogConfig"] = cfg
        if cfg["Type"] != "json-file":
            rec["LogPath"] = ""

    def _layers_for(self, image_id: str, driver: Driver) -> str:
        """The image's top layer id in ``driver``, copying layers in from another driver."""
        chain = self.images.layer_chain(image_id)
        if (
            chain
            and all(self.images.layer_record(store_name(driver), c) for c in chain)
            and driver.exists(chain[-1][7:])
        ):
            return chain[-1][7:]
        with self.images.lock:
            return self.images.ensure_layers(image_id, driver, self.driver)

    def _record(
        self,
        cid: str,
        image_ref: str,
        image_id: str,
        image_config: dict,
        opts: specmod.RunOptions,
        driver: str,
        auto_remove: bool,
    ) -> dict:
        cfg = image_config.get("config") or {}
        return {
            "Id": cid,
            "Created": now(),
            "Name": "",  # ContainerStore.add claims it
            "Image": image_id,
            "Path": "",
            "Args": [],
            "Driver": driver,
            "Parent": None,
            "RestartCount": 0,
            "Creating": True,  # until the bundle is written; reconcile undoes it
            "Config": {
                "Hostname": specmod.default_hostname(opts, cid),
                "User": opts.user if opts.user is not None else cfg.get("User", ""),
                "Env": specmod.config_env(cfg.get("Env") or [], opts.env),
                "Cmd": opts.command or None,
                "Entrypoint": [opts.entrypoint] if opts.entrypoint else cfg.get("Entrypoint"),
                "WorkingDir": opts.workdir or cfg.get("WorkingDir", ""),
                "Image": image_ref,
                "Labels": {**(cfg.get("Labels") or {}), **opts.labels},
                **_exposed(cfg, opts),
            },
            "HostConfig": {
                "AutoRemove": auto_remove,
                "NetworkMode": opts.network,
                "CgroupParent": opts.cgroup_parent or "",
                "PortBindings": _port_bindings(opts.publish) if opts.publish else {},
                "PublishAllPorts": opts.publish_all,
                **specmod.host_config(opts),
            },
            "Mounts": [{k: v for k, v in m.items() if k[0] != "_"} for m in opts.mounts],
            "State": {
                "Status": "created",
                "Running": False,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": 0,
                "ExitCode": 0,
                "Error": "",
                "StartedAt": "0001-01-01T00:00:00Z",
                "FinishedAt": "0001-01-01T00:00:00Z",
                "Owner": me(),
            },
            "LogPath": str(self.containers.path(cid) / f"{cid}-json.log"),
            # where the container's cgroup will be made, before anything makes it (the
            # process that runs it sits here; engine/cgroupref.py)
            "MonitorCgroup": own_paths(),
        }

    def _discard(self, rec: dict, cgroup: bool = True, volumes: bool = False) -> None:
        """Undo a container completely (cgroup, layer, network, record, name); used by rm,
        recovery and failures. Every step is a no-op when already done, so an undo that
        was interrupted can be done again. ``cgroup=False``: the caller removed it;
        ``volumes`` (``rm -v``): its anonymous volumes go too, as with ``--rm``."""
        if cgroup and not alive(rec["State"].get("Owner")):
            # (a live owner is starting it: its own failure path drains the cgroup)
            from . import cgroupref

            cgroupref.remove(rec)
        driver = self.driver(rec["Driver"])
        if driver.exists(rec["Id"]):
            self.release(rec)
            driver.remove(rec["Id"])
        self.release_network(rec)
        self.containers.remove(rec)
        if not rec.get("Creating"):  # a creation undone never had its create event
            events.container(self.root, rec, "destroy")
        if (volumes or rec["HostConfig"].get("AutoRemove")) and rec.get("Mounts"):
            from .volumes import remove_anonymous  # --rm takes its anonymous volumes along

            remove_anonymous(self.root, rec, self.containers.all)

    def _save_created(self, rec: dict, bundle: dict) -> None:
        write_json(self.containers.path(rec["Id"]) / "config.json", bundle)
        self.containers.save(rec)  # without "Creating": the container is complete

    def flush_created(self, rec: dict) -> None:
        """Write what create(keep_mounted=True) left to write: the bundle as built and the
        completed record. Before anything changes the bundle (a network joins it), and in
        any case before the container counts as started or ends (finish)."""
        pending = self._unsaved.pop(rec["Id"], None)
        if pending is not None:
            self._save_created(*pending)

    def bundle(self, rec: dict) -> dict:
        """The container's OCI bundle config (the one create() just built, if unwritten)."""
        pending = self._unsaved.get(rec["Id"])
        if pending is not None:
            return pending[1]
        return read_json(self.containers.path(rec["Id"]) / "config.json")

    def mount(self, rec: dict) -> None:
        """Mount the container's root where its bundle expects it (driver.get)."""
        rootfs = self.driver(rec["Driver"]).get(rec["Id"])
        bundle_root = self.bundle(rec)["root"]["path"]
        if os.path.realpath(rootfs) != os.path.realpath(bundle_root):
            self.driver(rec["Driver"]).put(rec["Id"])
            raise EngineError(f"container root moved: {bundle_root} is now {rootfs}", 125)

    def mark_running(self, rec: dict, pid: int) -> None:
        st = rec["State"]
        st.update(
            Status="running",
            Running=True,
            Pid=pid,
            ExitCode=0,
            Error="",
            StartedAt=now(),
            FinishedAt="0001-01-01T00:00:00Z",
            Owner=me(),
            Paused=False,
        )
        self.save_state(rec)
        events.container(self.root, rec, "start")

    def mark_exited(self, rec: dict, code: int, error: str = "") -> None:
        st = rec["State"]
        st.update(
            Status="exited",
            Running=False,
            Restarting=False,  # a restart that failed is over: the container is exited
            Pid=0,
            ExitCode=code,
            Error=error,
            FinishedAt=now(),
            Owner=None,
            Paused=False,
        )
        self.save_state(rec)

    def save_state(self, rec: dict) -> None:
        """Save ``rec`` (its State is this process's news) keeping the Name on disk.

        A monitor holds its record for the container's whole life; ``rename`` may have
        changed the record since, and a stale copy must not undo that.
        """
        try:
            rec["Name"] = self.containers.load(rec["Id"])["Name"]
        except (NotFound, ValueError, KeyError):
            pass
        self.containers.save(rec)

    def rename(self, ref: str, new: str) -> dict:
        """Give a container a new name: claim ``names/NEW`` (the atomic test that it is
        free), rewrite the record, then drop the old link. Resolving either name during the
        switch finds the same container; a taken name fails before anything changes."""
        cid = self.containers.resolve(ref)
        rec = self.containers.load(cid)
        old = rec["Name"].lstrip("/")
        new = new.lstrip("/")
        if new == old:
            raise InvalidInput("Renaming a container with the same name as its current name")
        # Under the container's lock: a monitor's save in between would be lost, and the
        # name sweep (orphans.sweep_names) sees two names of one container only here.
        with self.containers.lock(cid):
            self.containers.reserve_name(new, cid)
            try:
                rec = self.containers.load(cid)
                rec["Name"] = "/" + new
                self.containers.save(rec)
            except BaseException:
                os.unlink(self.containers.names / cstore.link_name(new))
                raise
            self.containers.unlink_name(old, cid)
        events.container(self.root, rec, "rename", oldName="/" + old)
        return rec

    def release(self, rec: dict) -> None:
        """Unmount the container's root. Only its owner process mounts it, so every
        reference left is that owner's."""
        driver = self.driver(rec["Driver"])
        if not driver.exists(rec["Id"]):
            return  # never made, or removed by an undo that was interrupted after it
        while driver.mounted(rec["Id"]):
            driver.put(rec["Id"])

    def finish(self, rec: dict, code: int, error: str = "") -> None:
        """After the container's process is gone: release its root, record or remove it."""
        if rec["State"]["Status"] in ("running", "restarting"):  # not a start that failed
            events.container(self.root, rec, "die", exitCode=str(code))
        self.flush_created(rec)
        self.release(rec)
        self.release_network(rec)
        if rec["HostConfig"].get("AutoRemove"):
            self._discard(rec, cgroup=False)  # every caller has removed it already
        else:
            self.mark_exited(rec, code, error)

    def start_failed(self, rec: dict, code: int, error: str, before: dict | None = None) -> None:
        """After a start that never ran the container's command (finish's counterpart).

        Docker's containerStart keeps the state the container had, adding the error and an
        exit code: a never-started container stays Created (its StartedAt is zero, which
        is what makes it "created"), so a later ``start`` may succeed once the cause is
        gone. The code is 126/127 when the command cannot be run or found, else the last
        run's, else 128 (moby daemon/start.go, translateContainerdStartErr). ``before``:
        the State as it was before this start began (it may have been marked running)."""
        before = dict(before or rec["State"])
        self.flush_created(rec)
        self.release(rec)
        self.release_network(rec)
        if rec["HostConfig"].get("AutoRemove"):
            self._discard(rec, cgroup=False)
            return
        never = before.get("StartedAt", "0001-").startswith("0001-")
        last = int(before.get("ExitCode") or 0)
        rec["State"].update(
            Status="created" if never else "exited",
            Running=False,
            Restarting=False,
            Paused=False,
            Pid=0,
            ExitCode=code if code in (126, 127) else (last or 128),
            Error=error,
            StartedAt=before.get("StartedAt", "0001-01-01T00:00:00Z"),
            FinishedAt=before.get("FinishedAt", "0001-01-01T00:00:00Z"),
            Owner=None,
        )
        self.save_state(rec)

    def release_network(self, rec: dict) -> None:
        """Give back what the container's network holds (address and port leases, veth,
        netns, nftables rules). none, host and container:NAME own nothing, and never
        load the network package."""
        mode = rec["HostConfig"].get("NetworkMode")
        if mode and mode not in ("none", "host") and not mode.startswith("container:"):
            from .network.manager import teardown

            teardown(self.root, rec)

    # -- recovery ----------------------------------------------------------------------
    def reconcile(self) -> None:
        """Clean up after pydock processes that died (SIGKILL, crash) holding containers.

        A record whose owner process is gone is finished as Docker finishes containers
        lost with their engine: cgroup emptied and removed, root released, Exited (255),
        or removed when it was ``--rm`` (as Docker's restore removes AutoRemove ones). A
        record that was still being created is undone. Stray directories of adds and
        removals that were killed go too (orphans.py): found by the same listdir, they
        cost nothing when there are none.
        """
        recs, strays = self.containers.scan()
        if strays:
            from .orphans import sweep_containers

            sweep_containers(self, strays)
        from .orphans import sweep_starters

        sweep_starters(self.root)
        for rec in recs:
            st = rec["State"]
            owner = st.get("Owner")
            if not owner or alive(owner):
                continue
            try:
                with self.containers.lock(rec["Id"]):  # one command cleans up, once
                    rec = self.containers.load(rec["Id"])
                    if alive(rec["State"].get("Owner")) or not rec["State"].get("Owner"):
                        continue
                    self._reconcile_one(rec)
            except NotFound:
                continue  # removed meanwhile by whoever held the lock
            except (EngineError, DriverError, OSError) as e:
                print(f"pydock: cleaning up container {rec['Id'][:12]}: {e}", file=sys.stderr)

    def _reconcile_one(self, rec: dict) -> None:
        from . import cgroupref

        st = rec["State"]
        if rec.get("Creating") or rec["HostConfig"].get("AutoRemove"):
            self._discard(rec)  # its creation was interrupted, or it was --rm
        elif st["Status"] in ("running", "restarting"):
            cgroupref.remove(rec)  # where its monitor made it (not where we sit)
            st["Restarting"] = False
            self.finish(rec, LOST_EXIT_CODE, "pydock exited while the container ran")
        else:  # a start that died before its container ran (its cgroup may be made)
            cgroupref.remove(rec)
            self.release(rec)
            self.release_network(rec)
            st["Owner"] = None
            self.containers.save(rec)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """``rm [-f] [-v]``: ``volumes`` removes the container's anonymous volumes that no
        other container uses (named ones stay, as Docker's rm -v leaves them)."""
        cid = self.containers.resolve(ref)
        with self.containers.lock(cid):  # no start between our check and the removal
            rec = self.containers.load(cid)
            st = rec["State"]
            running = st["Status"] in ("running", "restarting") and alive(st.get("Owner"))
            if not running:
                self._discard(rec, volumes=volumes)
                return ref
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {cid}. Stop the container before "
                    "attempting removal or force remove"
                )
            from .shim import request_stop

            request_stop(str(self.containers.path(cid)), "cancel")  # no restart policy
            if st["Pid"] > 0:
                os.kill(st["Pid"], signal.SIGKILL)
            if st.get("Paused"):
                self.container_cgroup(rec).thaw()  # a v1 freezer holds back even SIGKILL
        self._wait_owner(st["Owner"])  # its monitor records the exit under the lock
        try:
            with self.containers.lock(cid):
                rec = self.containers.load(cid)
                if alive(rec["State"].get("Owner")):
                    raise Conflict(f"container {cid[:12]} was started again while being removed")
                self._discard(rec, volumes=volumes)
        except NotFound:
            pass  # its owner removed it (--rm)
        return ref

    def container_cgroup(self, rec: dict):  # -> pydock.cgroupfs.Cgroup
        """The cgroup of a running container, as its owner (the monitor) placed it.

        A relative cgroupsPath lies under the cgroup of the process that created it, which
        need not be the caller's: the owner's /proc/<pid>/cgroup says where that was.
        """
        from ..cgroupfs import Cgroup, CgroupError, own_paths

        st = rec["State"]
        if st["Status"] != "running" or not alive(st.get("Owner")):
            raise Conflict(f"Container {rec['Id']} is not running")
        path = self.bundle(rec)["linux"]["cgroupsPath"]
        if path.startswith("/"):
            return Cgroup(path)
        try:
            return Cgroup(path, own=own_paths(st["Owner"]["Pid"]))
        except (CgroupError, OSError) as e:
            raise EngineError(f"cgroup of container {rec['Id'][:12]}: {e}") from None

    @staticmethod
    def _wait_owner(owner: dict, timeout: float = 10.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while alive(owner) and time.monotonic() < deadline:
            time.sleep(0.01)

    def image_in_use(self, image_id: str) -> list[str]:
        return [c["Id"] for c in self.containers.all() if c.get("Image") == image_id]


__all__ = ["Engine", "cstore", "short_id"]
