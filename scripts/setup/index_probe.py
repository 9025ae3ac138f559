#!/usr/bin/env python3
"""Whether pip's package index can be reached: exit 0 and print why when it cannot, exit 1 when it can.

Used by scripts/setup/pyenv.sh and scripts/setup/real_model.sh after a failed download, to tell
"no network" (the tests that need the download skip, saying so) from a real error (make test fails).
The index is PIP_INDEX_URL, else pip's configured global.index-url, else https://pypi.org/simple/.
"""
import os
import subprocess
import sys
import urllib.request


def index_url() -> str:
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "https://pypi.org/simple/"


def main() -> int:
    url = index_url()
    try:
        urllib.request.urlopen(url.rstrip("/") + "/pip/", timeout=20).close()
    except Exception as e:  # any failure to fetch the index page means it cannot be reached
        print(f"the package index {url} cannot be reached ({e})")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
