"""setuptools shim: only needed because cffi's `cffi_modules` has no pyproject form."""

from setuptools import setup

setup(cffi_modules=["nsutil/_build.py:ffibuilder", "nsutil/_build_seccomp.py:ffibuilder"])
