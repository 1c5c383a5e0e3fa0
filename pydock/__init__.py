"""pydock: a container engine in Python.

The subpackages live in top-level folders of the repository (nsutil/, cgroupfs/, drivers/,
overlay/, engine/) and are mapped to ``pydock.<folder>`` at install time.
"""

__version__ = "0.1.0"
