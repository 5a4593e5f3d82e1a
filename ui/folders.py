"""The folders a page may open (results, sweeps): under one root folder only,
found for a picker or typed by a visitor; a shared server opens nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st


ROOT_ENV = "UMASK_FOLDERS_ROOT"


def folders_root() -> Path:
    """The folder whose contents the pages may open by a typed path: the
    working directory, or ``$UMASK_FOLDERS_ROOT`` (a page that finds it
    missing says so and stops)."""
    root = Path(os.environ.get(ROOT_ENV) or Path.cwd()).expanduser().resolve()
    if not root.is_dir():
        st.error(f"{ROOT_ENV} is '{os.environ.get(ROOT_ENV)}', which is not a folder here; set it to the folder "
                 "that holds the results and sweeps this dashboard may open.")
        st.stop()
    return root


def under_root(path: Path) -> bool:
    """Whether ``path`` (relative: to the working directory, as files are
    opened) lies under :func:`folders_root`, symbolic links followed."""
    try:
        return path.expanduser().resolve().is_relative_to(folders_root())
    except RuntimeError:  # ~nosuchuser, or a loop of links
        return False


def find_folders(root: Path, marker: str, depth: int) -> list[str]:
    """Folders at most ``depth`` levels under ``root`` that hold a file
    ``marker`` (results.csv: a sweep; result.json: a result), sorted.

    Hidden folders (a venv's ``.venv``, staging copies) are not entered, nor
    is a folder once it holds the marker (a sweep's runs are found by asking
    for results); a symbolic link to a folder elsewhere is not followed: it
    would open what a typed path may not.
    """
    found = []
    for here, dirs, files in os.walk(root):
        level = len(Path(here).relative_to(root).parts)
        if marker in files:
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = [] if level >= depth else [d for d in dirs if not d.startswith(".") and d not in NEVER_HOLD_RESULTS]
    return sorted(found)


#: Folders a search for results never enters: a venv not named .venv holds
#: torch's deep package tree, which a search six levels down would walk.
NEVER_HOLD_RESULTS = frozenset({"site-packages", "node_modules", "__pycache__"})


def folder_picker(label: str, marker: str, depth: int, *, key: str, placeholder: str, what: str,
                  first: bool = True, deepest_first: bool = False) -> Path | None:
    """A sidebar select box of the folders :func:`find_folders` finds under
    :func:`folders_root` (type to search), with "another folder..." for a
    typed path (checked by :func:`typed_folder`); the chosen folder or None.
    ``first``: start on the first folder found (else on none, until picked).
    ``deepest_first``: name each folder from its last part up
    ("k02-seed0 ‹ fast-5000 ‹ grid-hide ‹ ..."): a sweep's runs differ only
    there, past the edge of a 300-pixel sidebar."""
    root = folders_root()
    options = find_folders(root, marker, depth) + [ANOTHER_FOLDER]

    def shown(option: str) -> str:  # relative to the root: an absolute path is cut off before its name
        if option == ANOTHER_FOLDER:
            return option
        parts = Path(option).relative_to(root).parts
        return " ‹ ".join(reversed(parts)) if deepest_first else "/".join(parts) or "."

    pick = st.sidebar.selectbox(label, options, index=0 if first else None, format_func=shown, persist_state="session",
                                key=f"{key}_pick", placeholder="Choose one (type to search)",
                                help=f"Folders under {root} that hold a {marker} (type to search).")
    if pick is None:
        return None
    if pick != ANOTHER_FOLDER:
        return Path(pick)
    typed = st.sidebar.text_input(f"Path of a {what[:-1]}", persist_state="session", key=f"{key}_path",
                                  placeholder=placeholder, help=f"A folder under {root}.")
    typed = typed.strip()  # a pasted path often brings a space or a newline along
    return typed_folder(typed, what) if typed else None


ANOTHER_FOLDER = "another folder..."


def typed_folder(typed: str, what: str) -> Path | None:
    """The folder a visitor typed, if it lies under :func:`folders_root`;
    else None, with a sidebar message. Relative paths start at the root.

    On a server shared by a class, a text box must not open (or, on the
    Study page, write report.html into) any folder of the server's disk.
    """
    root = folders_root()
    try:
        path = root / Path(typed).expanduser()  # an absolute path stays as it is
    except RuntimeError:  # ~nosuchuser
        path = root / typed
    if not under_root(path):
        st.sidebar.error(f"'{typed}' is outside {root}; this page opens {what} under it only: start the dashboard "
                         f"from a folder that holds it, or set {ROOT_ENV}.")
        return None
    return path
