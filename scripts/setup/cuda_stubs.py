#!/usr/bin/env python3
"""Link stubs for the CUDA libraries a PyPI torch wheel links but the venv does not install.

PyPI's Linux torch wheel is the CUDA build: libtorch_cuda.so, libtorch_python.so and a few
others list libcublas, libcudnn, libnccl, libnvshmem, ... as DT_NEEDED, so `import torch`
fails with "libcudnn.so.9: cannot open shared object file" unless the nvidia-* wheels
(about 2.7 GB) are installed. The reference venv (scripts/setup/pyenv.sh) is CPU only, so
instead of those wheels this script builds, for each such library that cannot be found, a
tiny shared library with the same soname that defines every symbol torch's libraries import
from it, each as a function returning 1 (an error status for every CUDA library's API), with
the symbol versions the importers ask for (readelf -V). Only the libraries `import torch` loads count (the
extension module and its DT_NEEDED closure). The stubs go into torch/lib, next to
the libraries that need them (their RUNPATH is $ORIGIN).

What the stubs do: they satisfy the dynamic linker, so `import torch` works and CPU math is
the wheel's own. What they never do: CUDA. torch.cuda.is_available() stays False (the real
CUDA runtime, installed from its wheel, finds no driver), and nothing on the CPU path calls
into a stubbed library; a call that did would get the error status 1, not a result.

Refused by name: a missing library that is not an NVIDIA CUDA library (a stub for libgomp,
say, would change the CPU math). Unversioned symbols go to the missing library whose name
they start with (ncclAllReduce to libnccl.so.2); one that fits none stays undefined, and
scripts/setup/pyenv.sh's import check then fails naming it. Needs readelf, nm (binutils)
and a C compiler.

    cuda_stubs.py TORCH_LIB_DIR [--search DIR]... [--cc gcc]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The libraries a stub may stand in for: NVIDIA's CUDA libraries only.
CUDA_LIB = re.compile(r"^lib(cu[a-zA-Z]+|nccl|nvshmem[a-z_]*|nvrtc[a-z_-]*|nvJitLink|nvToolsExt|nvtx[0-9a-z_]*)\.so(\.[0-9]+)*$")
MARKER = "MOSE-CUDA-STUBS.txt"


class StubError(Exception):
    """A reason the stubs cannot be made."""


def run(*args):
    """The stdout of a command; a StubError naming it when it fails."""
    try:
        r = subprocess.run(args, capture_output=True, text=True)
    except OSError as e:
        raise StubError(f"{args[0]}: {e}") from e
    if r.returncode != 0:
        raise StubError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def is_elf_lib(path):
    """Whether path is a regular ELF shared object."""
    if not os.path.isfile(path) or ".so" not in os.path.basename(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def needed(path):
    """The DT_NEEDED sonames of an ELF file."""
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", "-W", path))


def version_files(path):
    """Version node name -> the file (soname) that must provide it, from .gnu.version_r."""
    out, cur = {}, None
    for line in run("readelf", "-V", "-W", path).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            cur = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and cur:
            out[m.group(1)] = cur
    return out


def undefined(path):
    """(symbol, version or "") of the strong undefined dynamic symbols of an ELF file."""
    syms = []
    for line in run("nm", "-D", "--undefined-only", path).splitlines():
        f = line.split()
        if len(f) != 2 or f[0] != "U":  # weak references ("w") need no definition
            continue
        sym, _, ver = f[1].partition("@")
        syms.append((sym, ver.lstrip("@")))
    return syms


def defined(path):
    """The defined dynamic symbol names of an ELF file."""
    return {line.split()[-1].split("@")[0] for line in run("nm", "-D", "--defined-only", path).splitlines() if line.strip()}


def system_libs():
    """Soname -> path of the libraries in the dynamic linker's cache."""
    out = {}
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            text = run(ldconfig, "-p")
        except StubError:
            continue
        for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", text, re.M):
            if "x86-64" in m.group(2) or "64bit" in m.group(2) or "AArch64" in m.group(2):
                out.setdefault(m.group(1), m.group(3))
        return out
    raise StubError("ldconfig not found: cannot tell which libraries the system has")


def stem(soname):
    """The API prefix of a library: libcusparseLt.so.0 -> cusparselt, libnvshmem_host.so.3 -> nvshmem."""
    return soname[3:].split(".so")[0].split("_")[0].lower()


def plan(torch_lib, search):
    """Which stubs to build: {soname: {version_node_or_"": set(symbols)}}, and the importers."""
    present = {}
    for d in [torch_lib] + search:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if is_elf_lib(p):
                present.setdefault(name, p)
    system = system_libs()
    # What `import torch` loads: the extension module, the library torch preloads, and
    # their DT_NEEDED closure (libcaffe2_nvrtc.so and the like, loaded only for CUDA work,
    # are left alone).
    pkg = os.path.dirname(torch_lib)
    queue = [os.path.join(pkg, n) for n in sorted(os.listdir(pkg)) if n.startswith("_C") and is_elf_lib(os.path.join(pkg, n))]
    queue += [p for p in [os.path.join(torch_lib, "libtorch_global_deps.so")] if is_elf_lib(p)]
    if not queue:
        raise StubError(f"{pkg} has no _C extension module: not a torch package")
    seen, missing, importers = set(queue), set(), []
    while queue:
        lib = queue.pop(0)
        miss = []
        for n in needed(lib):
            if n in present:
                if present[n] not in seen:
                    seen.add(present[n])
                    queue.append(present[n])
            elif n not in system:
                miss.append(n)
        if miss:
            importers.append(lib)
            missing.update(miss)
    bad = sorted(n for n in missing if not CUDA_LIB.match(n))
    if bad:
        raise StubError(f"torch needs {', '.join(bad)}, which cannot be found and are not CUDA libraries: "
                        "install them (a stub would change what runs on the CPU)")
    if not missing:
        return {}, importers
    # Symbols the libraries that are present define: an unversioned reference to one of
    # them is not the missing libraries' business.
    have = set()
    for lib in importers:
        for n in needed(lib):
            p = present.get(n) or system.get(n)
            if p:
                have |= defined(p)
    out = {n: {} for n in missing}
    prefixes = sorted(((stem(n), n) for n in missing), key=lambda x: -len(x[0]))
    for lib in importers:
        files = version_files(lib)
        for sym, ver in undefined(lib):
            if ver:
                f = files.get(ver)
                if f in missing:
                    out[f].setdefault(ver, set()).add(sym)
                continue
            if sym in have:
                continue
            for pre, n in prefixes:
                if sym.lower().startswith(pre):
                    out[n].setdefault("", set()).add(sym)
                    break
    return out, importers


def build(soname, nodes, dest, cc, tmp):
    """Compile one stub library into dest/soname."""
    syms = sorted({s for ss in nodes.values() for s in ss})
    c = os.path.join(tmp, soname + ".c")
    with open(c, "w") as f:
        f.write(f"/* Link stub for {soname}: made by scripts/setup/cuda_stubs.py; every function returns 1. */\n")
        for i, s in enumerate(syms):
            f.write(f'int mose_stub_{i}(void) __asm__("{s}");\nint mose_stub_{i}(void) {{ return 1; }}\n')
    args = [cc, "-shared", "-fPIC", "-O0", "-o", os.path.join(tmp, soname), c, f"-Wl,-soname,{soname}"]
    versions = sorted(v for v in nodes if v)
    if versions:
        m = os.path.join(tmp, soname + ".map")
        with open(m, "w") as f:
            for i, v in enumerate(versions):
                extra = sorted(nodes.get("", ())) if i == 0 else []
                f.write(f'"{v}" {{ global: {" ".join(s + ";" for s in sorted(nodes[v]) + extra)} ' +
                        ("local: *; " if i == 0 else "") + "};\n")
        args.append(f"-Wl,--version-script={m}")
    run(*args)
    shutil.move(os.path.join(tmp, soname), os.path.join(dest, soname))
    return len(syms), versions


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("torch_lib", help="the venv's site-packages/torch/lib")
    ap.add_argument("--search", action="append", default=[], help="another dir of real libraries (the nvidia wheels' lib dirs)")
    ap.add_argument("--cc", default=os.environ.get("CC", "gcc"))
    a = ap.parse_args()
    try:
        todo, importers = plan(a.torch_lib, [d for d in a.search if os.path.isdir(d)])
        done = []
        with tempfile.TemporaryDirectory() as tmp:
            for soname in sorted(todo):
                n, versions = build(soname, todo[soname], a.torch_lib, a.cc, tmp)
                done.append((soname, n, versions))
        if todo:
            with open(os.path.join(a.torch_lib, MARKER), "w") as f:
                f.write("# Link stubs made by mose's scripts/setup/cuda_stubs.py so that torch imports without\n"
                        "# the CUDA wheels: CPU only. soname, symbols, version nodes. Importers: "
                        + " ".join(os.path.basename(p) for p in importers) + "\n")
                for soname, n, versions in done:
                    f.write(f"{soname} {n} {','.join(versions) or '-'}\n")
        for soname, n, versions in done:
            print(f"cuda_stubs: {soname}: {n} symbols{' (' + ', '.join(versions) + ')' if versions else ''}", file=sys.stderr)
    except StubError as e:
        print(f"cuda_stubs: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
