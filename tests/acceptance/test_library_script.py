"""The Python API as a script uses it: a fresh interpreter, nothing configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import RateLimit

from .conftest import SCALE, SECRET

SCRIPT = """
import json, sys
import orchestrator
result = orchestrator.submit(sys.argv[1], db=sys.argv[2], out=sys.argv[3],
                             run_limit=sys.argv[4], status_limit=sys.argv[5])
with open(sys.argv[6], "w") as fh:
    json.dump({"counts": result.counts, "credits": result.credits,
               "outputs": {k: [str(p) for p in v] for k, v in result.outputs.items()}}, fh)
"""


def test_a_script_gets_results_and_the_terminal_gets_nothing(api: Any, tmp_path: Path) -> None:
    """submit() from a script prints nothing, even its warnings, and the key nowhere."""
    server, env = api
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "jobs:\n"
        "  - {id: ok, model_name: background-remove, inputs: {image: 'https://x/1.png'}}\n"
        "  - {id: bad, model_name: background-remove,"
        " inputs: {image: 'https://x/2.png?sandbox:fail=PoseError'}}\n"
    )
    result_file = tmp_path / "result.json"
    limits = [str(RateLimit(50, 60).scaled(SCALE)), str(RateLimit(50, 10).scaled(SCALE))]
    args = [manifest, tmp_path / "q.db", tmp_path / "out", *limits, result_file]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    result = json.loads(result_file.read_text())
    assert result["counts"] == {"completed": 1, "failed": 1}
    assert result["credits"] == server.state.credits_charged == 1
    (path,) = result["outputs"]["ok"]
    assert Path(path).is_file() and result["outputs"]["bad"] == []
    assert SECRET not in result_file.read_text()
