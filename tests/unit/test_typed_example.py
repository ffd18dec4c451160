"""Type checkers see a typed function's event data, and a typed wait's, as its model: mypy --strict passes on the
typed example, and fails on the same handler reading a field the model does not have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "typed_orders.py"


def mypy_strict(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_mypy_strict_passes_on_the_typed_example_and_catches_a_field_the_model_lacks(tmp_path: Path) -> None:
    checked = mypy_strict(EXAMPLE)
    assert checked.returncode == 0, checked.stdout
    wrong = tmp_path / "wrong.py"
    source = EXAMPLE.read_text()
    wrong.write_text(source.replace("order.user_id)", "order.customer)").replace("data.amount ", "data.paid_at "))
    refused = mypy_strict(wrong)
    assert refused.returncode == 1
    assert '"OrderCreated" has no attribute "customer"' in refused.stdout
    assert '"OrderPaid" has no attribute "paid_at"' in refused.stdout  # a typed wait's event


def test_import_outlast_does_not_import_pydantic() -> None:
    code = "import sys, outlast; print('pydantic' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == "False"
