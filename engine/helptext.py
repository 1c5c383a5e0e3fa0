"""What ``--help`` says: a one-line summary of every command and a line for every flag.

The texts live here, not in each ``add_argument`` call, for two reasons: the run path
builds its parser on every start and should not carry a few hundred strings it never
prints, and one table keeps the wording of a flag that several commands share (``--format``,
``--filter``, ``--quiet``) the same everywhere. :func:`fill` applies the table to a parser
just before argparse formats its help (``cliutil.Parser.format_help``); a test walks every
command and fails on a flag or command without a line, so a new flag cannot ship silent.

Lookup of a flag's line, first hit wins: the command's own entry in :data:`BY_COMMAND`
(by its full path, ``"image prune"``, then its first word), then :data:`FLAGS`.
"""

from __future__ import annotations

import argparse

#: a command's path (``prog`` without ``pydock``) -> its summary
COMMANDS: dict[str, str] = {
    "": "A container engine in Python: images, containers, storage drivers, networks.",
    "run": "Create a container from an image and start it, running COMMAND",
    "create": "Create a container from an image without starting it",
    "start": "Start one or more stopped containers",
    "stop": "Stop running containers (the stop signal, then SIGKILL after a grace period)",
    "restart": "Stop and start one or more containers",
    "kill": "Send a signal (SIGKILL unless told) to running containers",
    "rm": "Remove one or more containers",
    "wait": "Wait for containers to stop, then print their exit codes",
    "attach": "Connect this terminal's input and output to a running container",
    "exec": "Run a command in a running container",
    "logs": "Show what a container wrote to its stdout and stderr",
    "ps": "List containers (running ones unless -a)",
    "pause": "Freeze every process of one or more containers",
    "unpause": "Thaw the processes of paused containers",
    "rename": "Give a container a new name",
    "top": "Show the processes running in a container",
    "stats": "Show containers' live CPU, memory, network, block I/O and pids usage",
    "diff": "List what changed in a container's filesystem since it was created",
    "commit": "Make a new image from a container's changes",
    "cp": "Copy files between a container and the host ('-' streams a tar)",
    "port": "List a container's published ports, or the host address of one",
    "export": "Write a container's filesystem as a tar archive",
    "update": "Change a container's resource limits or restart policy",
    "container": "Manage containers (the container commands by their management names)",
    "images": "List images",
    "rmi": "Remove one or more images",
    "load": "Load images from a tar archive made by save (or docker save)",
    "save": "Write one or more images to a tar archive (to stdout unless -o)",
    "import": "Make an image from a tarball of a filesystem",
    "pull": "Download an image from a registry",
    "push": "Upload an image to a registry",
    "tag": "Give an image another name (TARGET_IMAGE refers to SOURCE_IMAGE)",
    "history": "Show the layers of an image and the steps that made them",
    "search": "Search the registry's index for images",
    "login": "Store credentials for a registry",
    "logout": "Forget the credentials stored for a registry",
    "image": "Manage images",
    "image bootstrap": "Store pydock's embedded default image (busybox from this host)",
    "image ls": "List images",
    "image rm": "Remove one or more images",
    "image inspect": "Show the details of one or more images",
    "image prune": "Remove dangling images (every unused image with -a)",
    "manifest": "Inspect image manifests and manifest lists in a registry",
    "manifest inspect": "Show an image's manifest or manifest list from its registry",
    "inspect": "Show the low-level details of containers, images, networks or volumes",
    "version": "Show pydock's version and the API version it speaks",
    "info": "Show this engine's configuration: storage driver, cgroups, counts",
    "events": "Show what happened: container, image, network and volume events",
    "network": "Manage networks",
    "network create": "Create a bridge network",
    "network ls": "List networks",
    "network inspect": "Show the details of one or more networks",
    "network rm": "Remove one or more networks",
    "network prune": "Remove every network no container uses",
    "network connect": "Connect a container to a network",
    "network disconnect": "Disconnect a container from a network",
    "volume": "Manage volumes",
    "volume create": "Create a volume",
    "volume ls": "List volumes",
    "volume inspect": "Show the details of one or more volumes",
    "volume rm": "Remove one or more volumes",
    "volume prune": "Remove unused anonymous volumes (every unused one with -a)",
    "system": "Manage pydock itself",
    "system boot": "Recover after a host reboot: sweep what dead containers and runs left",
    "system warm": "Keep a pool of prepared start workers that make 'run' faster",
    "system df": "Show the disk space images, containers and volumes take",
    "system prune": "Remove stopped containers, unused networks and dangling images",
    "system info": "Show this engine's configuration: storage driver, cgroups, counts",
    "system events": "Show what happened: container, image, network and volume events",
}

#: a flag's long name -> its line, for every command that has it unless BY_COMMAND differs
FLAGS: dict[str, str] = {
    "--help": "Print this help",
    # global options
    "--root": "Root of pydock's stores ($PYDOCK_ROOT; default /var/lib/pydock)",
    "--storage-driver": "Storage driver: overlay2, fuse-union or vfs ($PYDOCK_STORAGE_DRIVER; "
    "default: the first that works on this host)",
    "--storage-opt": "A storage driver option, KEY=VALUE (repeatable)",
    "--log-level": "How much to log: debug, info, warn, error or fatal",
    "--version": "Print pydock's version and exit",
    # run and create
    "--detach": "Run in the background and print the container's ID",
    "--name": "The container's name",
    "--env": "Set an environment variable, KEY=VALUE, or KEY to take the caller's value",
    "--env-file": "Read environment variables from a file, one KEY=VALUE per line",
    "--workdir": "The working directory inside the container (absolute)",
    "--user": "Run as this user: NAME|UID[:GROUP|GID]",
    "--hostname": "The container's hostname",
    "--entrypoint": "Replace the image's ENTRYPOINT",
    "--network": "Network: bridge (default), none (loopback only), host, container:NAME "
    "or a user network",
    "--publish": "Publish a container port on the host: [IP:][HOSTPORT:]PORT[/PROTO]",
    "--publish-all": "Publish every exposed port on a free host port",
    "--expose": "Expose a port or a range of ports without publishing it",
    "--cgroup-parent": "The cgroup to create the container's cgroup under",
    "--cgroupns": "Cgroup namespace: private or host",
    "--rm": "Remove the container when it exits",
    "--interactive": "Keep stdin open, even when not attached",
    "--tty": "Give the container a pseudo-terminal",
    "--restart": "Restart policy when the container exits: no, always, unless-stopped, "
    "on-failure[:N]",
    "--stop-signal": "The signal that stops the container (default SIGTERM)",
    "--stop-timeout": "Seconds 'stop' waits before it kills the container",
    "--detach-keys": "The key sequence that detaches from the container (default ctrl-p,ctrl-q)",
    "--memory": "Memory limit (bytes, or with b, k, m or g)",
    "--memory-swap": "Memory plus swap limit (-1: unlimited swap)",
    "--memory-reservation": "Soft memory limit",
    "--cpus": "How many CPUs' worth of time the container may use",
    "--cpu-shares": "CPU weight relative to other containers (default 1024)",
    "--cpuset-cpus": "The CPUs the container may run on (0-3, 0,1)",
    "--cpuset-mems": "The memory nodes the container may use (0-3, 0,1)",
    "--pids-limit": "Most processes the container may have (-1: unlimited)",
    "--blkio-weight": "Block I/O weight, 10 to 1000 (0: the default)",
    "--cap-add": "Add a Linux capability (ALL for every one)",
    "--cap-drop": "Drop a Linux capability (ALL for every one)",
    "--privileged": "Every capability, every device, no seccomp filter, writable /sys",
    "--security-opt": "Security option: seccomp=PROFILE|unconfined, no-new-privileges, ...",
    "--read-only": "Mount the container's root filesystem read-only",
    "--volume": "Mount a volume or a host path: [NAME|HOSTPATH:]CONTAINERPATH[:OPTIONS]",
    "--mount": "Mount a filesystem: type=bind|volume|tmpfs,source=...,target=...",
    "--volumes-from": "Mount the volumes of another container ([:ro|rw])",
    "--tmpfs": "Mount a tmpfs: PATH[:OPTIONS]",
    "--label": "Set a label, KEY=VALUE",
    "--label-file": "Read labels from a file, one KEY=VALUE per line",
    "--add-host": "Add a line to /etc/hosts: HOST:IP",
    "--dns": "A DNS server for /etc/resolv.conf",
    "--dns-search": "A DNS search domain for /etc/resolv.conf",
    "--dns-option": "A DNS option for /etc/resolv.conf",
    "--init": "Run a small init as PID 1 that forwards signals and reaps zombies",
    "--ulimit": "A resource limit: NAME=SOFT[:HARD]",
    "--shm-size": "Size of /dev/shm (bytes, or with b, k, m or g)",
    "--group-add": "Another group for the container's process",
    "--ipc": "IPC namespace: private, shareable, host or container:NAME",
    "--pid": "PID namespace: host or container:NAME (default: its own)",
    "--uts": "UTS namespace: host (default: its own)",
    "--cidfile": "Write the container's ID to this file",
    "--attach": "Attach to stdin, stdout or stderr",
    "--sig-proxy": "Forward the signals this command receives to the container",
    "--pull": "Pull the image: always, missing (default) or never",
    "--platform": "The platform of the image (this host's, linux/amd64)",
    "--device": "Give the container a host device: HOST[:CONTAINER[:PERMISSIONS]]",
    "--device-cgroup-rule": "Add a rule to the container's device list: 'TYPE MAJOR:MINOR ACCESS'",
    "--log-driver": "Where the container's output goes: json-file, local or none",
    "--log-opt": "A log driver option: max-size=SIZE, max-file=N, ...",
    "--health-cmd": "The command that checks the container's health",
    "--health-interval": "Time between health checks (ms, s, m, h)",
    "--health-retries": "Failures in a row that make the container unhealthy",
    "--health-start-period": "Time the container gets to start before failures count",
    "--health-timeout": "Longest time one health check may take",
    "--no-healthcheck": "Run no health check, not even the image's",
    # other commands
    "--force": "Do it without asking, and ignore what does not exist",
    "--all": "Show all of them, not only the default selection",
    "--quiet": "Print only IDs",
    "--no-trunc": "Do not shorten IDs and other long fields",
    "--filter": "Only what matches this filter, KEY=VALUE (repeatable)",
    "--format": "Format the output with a Go template, 'json' or 'table'",
    "--size": "Show sizes",
    "--digests": "Show digests",
    "--no-prune": "Keep the image's untagged parents",
    "--follow": "Keep printing what the container writes",
    "--timestamps": "Show each line's timestamp",
    "--tail": "How many lines to show from the end ('all' for every line)",
    "--since": "Start at a time: an RFC 3339 date, a Unix time, or a duration like 10m",
    "--until": "End at a time: an RFC 3339 date, a Unix time, or a duration like 10m",
    "--details": "Show the extra attributes the log driver records",
    "--time": "Seconds to wait before killing (default: the container's --stop-timeout, "
    "else 10; -1 waits for ever)",
    "--signal": "The signal to send",
    "--no-stdin": "Do not attach stdin",
    "--input": "Read from this tar archive instead of stdin",
    "--output": "Write to this file instead of stdout",
    "--all-tags": "Every tag of the repository",
    "--insecure-registry": "Talk plain HTTP to this registry (repeatable)",
    "--username": "The user name",
    "--password": "The password (--password-stdin keeps it out of the process list)",
    "--password-stdin": "Read the password from stdin",
    "--change": "A Dockerfile instruction to apply to the image's config (CMD, ENV, ...)",
    "--message": "The message of the history entry",
    "--author": "The image's author ('Name <email>')",
    "--pause": "Pause the container while committing (default true)",
    "--archive": "Keep the files' owners (uid and gid)",
    "--follow-link": "Follow a symbolic link in the source path",
    "--type": "What to inspect: container, image, network or volume",
    "--human": "Print sizes and dates for people",
    "--no-stream": "Print the first result and stop",
    "--latest": "Show the last created container",
    "--last": "Show the N last created containers",
    "--subnet": "The network's subnet in CIDR form",
    "--gateway": "The gateway address of the subnet",
    "--driver": "The driver to use",
    "--mtu": "The MTU of the network's devices",
    "--bridge-name": "The bridge device (default br-<id12>)",
    "--opt": "A driver option, KEY=VALUE",
    "--count": "How many start workers to keep (default: daemon.json's start-pool)",
    "--stop": "Stop every start worker",
    "--volumes": "Also the volumes",
    "--verbose": "Show more detail",
    "--insecure": "Allow plain HTTP and unverified TLS to the registry",
    "--limit": "Show at most this many results",
}

#: per command (full path, or first word): the lines that differ from FLAGS
BY_COMMAND: dict[str, dict[str, str]] = {
    "start": {
        "--attach": "Attach stdout and stderr and forward signals",
        "--interactive": "Attach stdin",
    },
    "exec": {
        "--detach": "Run the command in the background",
        "--env": "Set an environment variable for the command, KEY=VALUE",
        "--user": "Run the command as this user: NAME|UID[:GROUP|GID]",
        "--workdir": "The command's working directory",
    },
    "attach": {"--sig-proxy": "Forward the signals this command receives (default true)"},
    "ps": {
        "--all": "Show every container (only running ones by default)",
        "--size": "Show each container's writable layer size (and its image's)",
        "--quiet": "Print only container IDs",
    },
    "images": {"--all": "Show every image", "--quiet": "Print only image IDs"},
    "image ls": {"--all": "Show every image", "--quiet": "Print only image IDs"},
    "image prune": {
        "--all": "Remove every image no container uses, not only dangling ones",
        "--force": "Do not ask for confirmation",
    },
    "volume prune": {
        "--all": "Remove every unused volume, not only anonymous ones",
        "--force": "Do not ask for confirmation",
    },
    "network prune": {"--force": "Do not ask for confirmation"},
    "system prune": {
        "--all": "Remove every unused image, not only dangling ones",
        "--force": "Do not ask for confirmation",
    },
    "stats": {"--all": "Show every container (only running ones by default)"},
    "rm": {
        "--force": "Remove a running container too (kills it first)",
        "--volumes": "Remove the container's anonymous volumes",
    },
    "rmi": {"--force": "Remove the image even if it has other tags or stopped containers"},
    "image rm": {"--force": "Remove the image even if it has other tags or stopped containers"},
    "volume": {
        "--force": "Remove a volume in use too",
        "--name": "The volume's name",
        "--label": "Set a label on the volume, KEY=VALUE",
    },
    "kill": {"--signal": "The signal to send (default SIGKILL)"},
    "stop": {"--signal": "The signal to stop with (default: the container's stop signal)"},
    "load": {"--quiet": "Print no progress"},
    "pull": {"--quiet": "Print only the image's name"},
    "push": {"--quiet": "Print no progress"},
    "image pull": {"--quiet": "Print only the image's name"},
    "image push": {"--quiet": "Print no progress"},
    "run": {"--quiet": "Print no pull progress"},
    "create": {"--quiet": "Print no pull progress"},
    "cp": {"--quiet": "Print no progress"},
    "history": {"--quiet": "Print only image IDs"},
    "image history": {"--quiet": "Print only image IDs"},
    "save": {"--format": "Archive layout: docker (docker save's) or oci"},
    "image save": {"--format": "Archive layout: docker (docker save's) or oci"},
    "import": {"--platform": "The platform to record in the image"},
    "image import": {"--platform": "The platform to record in the image"},
    "network create": {"--driver": "The network driver (bridge)"},
    "volume create": {"--driver": "The volume driver (local)"},
    "export": {"--output": "Write to this file instead of stdout"},
    "update": {"--restart": "The new restart policy"},
    "system df": {"--verbose": "Show every image, container and volume"},
    "manifest inspect": {"--verbose": "Show the manifests of every platform with their sizes"},
}


#: a management command's second words that name the same thing as another
_SAME = {"list": "ls", "remove": "rm"}


def _command_path(parser: argparse.ArgumentParser) -> str:
    return parser.prog.partition(" ")[2]


def summary(command: str) -> str | None:
    """``command``'s line; ``image pull`` and the like are the top-level command's, and
    ``network list`` is ``network ls``."""
    head, _, last = command.rpartition(" ")
    last = _SAME.get(last, last)
    return COMMANDS.get(command) or COMMANDS.get(f"{head} {last}".strip()) or COMMANDS.get(last)


def flag_line(command: str, action: argparse.Action) -> str | None:
    """The help line for ``action`` (an option) of ``command``'s parser."""
    long = max(action.option_strings, key=len)
    for key in (command, command.partition(" ")[0]):
        text = BY_COMMAND.get(key, {}).get(long)
        if text:
            return text
    return FLAGS.get(long)


def fill(parser: argparse.ArgumentParser) -> None:
    """Give ``parser``'s flags and subcommands their lines where they have none."""
    command = _command_path(parser)
    if parser.description is None:
        parser.description = summary(command)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            _fill_commands(parser, action)
        elif action.option_strings and action.help is None:
            action.help = flag_line(command, action)
        elif action.option_strings and action.help == "show this help message and exit":
            action.help = FLAGS["--help"]  # argparse's own -h


def _fill_commands(parser: argparse.ArgumentParser, action: argparse._SubParsersAction) -> None:
    """List each subcommand once (argparse lists only those given ``help=``), primary
    names only, with its summary; aliases are named after it."""
    listed = {a.dest for a in action._choices_actions}
    by_parser: dict[int, list[str]] = {}
    for name, sub in action.choices.items():
        by_parser.setdefault(id(sub), []).append(name)
    base = _command_path(parser)
    for names in by_parser.values():
        name, aliases = names[0], names[1:]
        if name in listed:
            continue
        line = summary(f"{base} {name}".strip()) or ""
        if aliases:
            line += f" (also: {', '.join(aliases)})"
        # argparse's own record of a listed subcommand (what add_parser(help=...) makes)
        action._choices_actions.append(action._ChoicesPseudoAction(name, (), line))
    action.metavar = "COMMAND"


def missing(parser: argparse.ArgumentParser) -> list[str]:
    """Every command and flag under ``parser`` that has no help line, for the test."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        if id(p) in seen:
            return
        seen.add(id(p))
        fill(p)
        command = _command_path(p)
        if not p.description:
            out.append(f"command '{command}'")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif action.option_strings and not action.help:
                out.append(f"'{command}' {max(action.option_strings, key=len)}")

    walk(parser)
    return out
