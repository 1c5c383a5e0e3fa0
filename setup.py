"""setuptools shim: cffi's `cffi_modules` has no pyproject form, and the init binary of
`run --init` (nsutil/init.c) is compiled here, into the installed pydock/nsutil/."""

import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

INIT_SOURCE = "nsutil/init.c"
INIT_BINARY = "pydock-init"


class BuildPyWithInit(build_py):
    """build_py, plus the static init next to the nsutil modules (engine/initproc.py
    finds it there)."""

    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "pydock", "nsutil", INIT_BINARY)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        cc = os.environ.get("CC", "cc")
        cmd = [cc, "-static", "-Os", "-s", "-Wall", "-Werror", "-o", out, INIT_SOURCE]
        subprocess.check_call(cmd)
        os.chmod(out, 0o755)


setup(
    cffi_modules=["nsutil/_build.py:ffibuilder", "nsutil/_build_seccomp.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithInit},
)
