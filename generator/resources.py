"""Where the shipped registry and templates live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # A wheel carries the data inside the package; a checkout (or editable install) keeps
    # it at the top level beside the package.
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def registry_dir() -> Path:
    return _data_dir("registry")


def templates_dir() -> Path:
    return _data_dir("templates")
