"""Write template.yaml as CloudFormation (aws-sam-translator, offline) for checkov.

checkov reads the SAM file too, but the translated template is what CloudFormation deploys:
the event source mappings, permissions and stage SAM writes are only there. `make lint` runs
this, then checkov on the output.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "layers" / "common" / "python"):
    sys.path.insert(0, str(path))

from tests.support.sam import translate  # noqa: E402 - after the path setup


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "artifacts" / "template.json")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(translate(), indent=1), encoding="utf-8")
    print(f"translated template: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
