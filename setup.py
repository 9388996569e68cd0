"""Packaging: the repository keeps its top-level folders (`slap/`, `master/`, …) while the
distribution installs them under one import namespace, ``partita`` (``partita.master``, …), so
that it claims no generic top-level name in a user's site-packages. Everything else is in
``setup.cfg``; only this mapping needs code (setup.cfg cannot rename what `find` returns)."""
from setuptools import find_packages, setup

FOLDERS = ("slap", "master", "proxy", "node", "recipes", "experiment")
NAMESPACE = "partita"

packages = [f"{NAMESPACE}.{name}"
            for name in find_packages(include=[*FOLDERS, *(f"{folder}.*" for folder in FOLDERS)])]

setup(
    packages=packages,
    package_dir={f"{NAMESPACE}.{folder}": folder for folder in FOLDERS},
)
