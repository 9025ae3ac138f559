"""A minimal PEP 517 build backend for mose_hf: a pure-Python wheel of mose_hf/ (and an
sdist, and an editable install), with no build dependencies, so `pip install ./python`
works offline and without build isolation. Metadata comes from pyproject.toml's
[project] table, whose values are written as JSON literals (strings, lists of strings).
"""
import base64
import hashlib
import json
import os
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "mose_hf"


def _project():
    meta, table = {}, None
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                table = line
            elif table == "[project]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                meta[k.strip()] = json.loads(v.strip())
    return meta


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}", f"Summary: {p['description']}",
             f"Requires-Python: {p['requires-python']}"] + [f"Requires-Dist: {d}" for d in p["dependencies"]]
    readme = os.path.join(ROOT, p["readme"])
    body = open(readme, encoding="utf-8").read() if os.path.exists(readme) else ""
    return p, "\n".join(lines + ["Description-Content-Type: text/markdown", "", body])


def _dist(p):
    return f"{p['name'].replace('-', '_')}-{p['version']}"


def _wheel(wheel_directory, files):
    """Write a py3-none-any wheel holding files ({archive name: bytes}) and its dist-info."""
    p, meta = _metadata()
    info = _dist(p) + ".dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = meta.encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: mose_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    name = _dist(p) + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in sorted(files.items()):
            z.writestr(zipfile.ZipInfo(arc, (2020, 1, 1, 0, 0, 0)), data)
    return name


def _sources():
    out = {}
    for f in sorted(os.listdir(os.path.join(ROOT, PACKAGE))):
        if f.endswith(".py"):
            with open(os.path.join(ROOT, PACKAGE, f), "rb") as fh:
                out[f"{PACKAGE}/{f}"] = fh.read()
    return out


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, _sources())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {f"{PACKAGE}.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    p, _ = _metadata()
    name = _dist(p) + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/mose_build.py"] + list(_sources()):
            t.add(os.path.join(ROOT, rel), arcname=f"{_dist(p)}/{rel}")
    return name
