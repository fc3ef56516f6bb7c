"""Hashes files with python-threatexchange's PDQ hasher, in ITS OWN virtual environment
(never a hashmatch dependency). Called by te_compat.py: paths in argv, JSON lines out.

    /path/to/te-venv/bin/python bench/te_pdq_runner.py FILE...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from threatexchange.signal_type.pdq import pdq_hasher


def main() -> None:
    for name in sys.argv[1:]:
        data = Path(name).read_bytes()
        value, quality = pdq_hasher.pdq_from_bytes(data)
        out = {"path": name, "pdq": [value, quality]}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
