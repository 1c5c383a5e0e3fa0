#!/usr/bin/env bash
# Sets pydock up on a fresh Debian 12 machine, as root: the system packages it uses, a
# virtual environment in .venv and pydock installed into it (with the test tools when
# given --test). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

if [ "$(id -u)" != 0 ]; then
    echo "setup: pydock manages namespaces, mounts and cgroups: run this as root" >&2
    exit 1
fi

# The Debian packages pydock needs, with their reasons, are listed in dev/apt-packages.txt;
# those its tests and benchmarks use besides (the peers, a registry) in
# dev/apt-packages-test.txt, installed only with --test.
lists=(dev/apt-packages.txt)
[ $want_tests = 1 ] && lists+=(dev/apt-packages-test.txt)
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${lists[@]}" | awk '{print $1}')
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's own python3 is built with PGO and LTO and a static libpython: every `pydock`
# start and every step of the run path is faster on it than on a plain source build
# (measured: `python -c pass` 0.7 ms sooner, `bench start-latency` p50 ~4 ms lower). So
# it is preferred to whatever python3 comes first on PATH; PYTHON=... overrides.
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=/usr/bin/python3
else
    python=python3
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup: pydock needs Python >= 3.11 ($python is $("$python" -V 2>&1))" >&2
    exit 1
}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --upgrade pip wheel
if [ $want_tests = 1 ]; then
    .venv/bin/pip install -q '.[test,bench]'
else
    .venv/bin/pip install -q .
fi
# pip builds pydock (and any sdist) in an isolated environment with its own setuptools;
# the one `python -m venv` puts in .venv is never used at run time, and its
# distutils-precedence.pth costs ~1 ms of every `pydock` start (site imports it).
.venv/bin/pip uninstall -q -y setuptools 2>/dev/null || true
# pydock's launcher replaces pip's console script: the same entry point run by
# `python -IS`, ~2 ms sooner on every start (engine/launcher.py says why).
.venv/bin/python -I -m pydock.engine.launcher .venv/bin/pydock || true
.venv/bin/pydock --version >/dev/null
