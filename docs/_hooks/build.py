"""mkdocs hooks of the xbar documentation.

* The API pages are read from the sources (griffe's static analysis). The layers live in
  their own top-level folders and install as one namespace (``xbar``, ``xbar.devices``,
  ...; pyproject ``package-dir``), a layout static analysis cannot see; so the build lays
  the namespace out in a temporary folder of links and points mkdocstrings at it.
* Every executed notebook of ``notebooks/`` is listed under "Course (notebooks)"; they are
  rendered from their committed outputs (mkdocs-jupyter, not executed), and a notebook
  added to the folder appears without editing ``mkdocs.yml``.
"""

import atexit
import pathlib
import shutil
import tempfile

from mkdocs.plugins import event_priority

LAYERS = {"devices": "devices", "networks": "networks", "learning": "learning"}


def _namespace(root: pathlib.Path) -> str:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xbar-docs-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    pkg = tmp / "xbar"
    pkg.mkdir()
    for entry in (root / "xbar").iterdir():
        if entry.suffix == ".py" or entry.is_dir() and entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry.resolve())
    for name, folder in LAYERS.items():
        (pkg / name).symlink_to((root / folder).resolve())
    return str(tmp)


@event_priority(100)  # before mkdocstrings reads its handler options
def on_config(config):
    root = pathlib.Path(config["config_file_path"]).parent
    handler = config["plugins"]["mkdocstrings"].config["handlers"].setdefault("python", {})
    handler["paths"] = [_namespace(root)]

    folder = pathlib.Path(config["docs_dir"]) / "notebooks"
    pages = [
        {p.stem.replace("_", " "): f"notebooks/{p.name}"}
        for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    ]
    for entry in config["nav"]:
        if isinstance(entry, dict) and "Course (notebooks)" in entry:
            entry["Course (notebooks)"] = ["course.md", *pages]
    return config
