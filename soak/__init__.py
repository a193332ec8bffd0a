"""`make soak`: thousands of opt-outs through the local stack while every vendor sandbox fails.

The domain package lives in the layer (as Lambda mounts it at /opt/python): put it on the path
before any soak module imports it.
"""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "common" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
