"""One cache of botocore's service models for the whole test process.

moto's `mock_aws` starts every test on a new boto3 session, and each session's loader read and
decoded the services' JSON models again (DynamoDB's alone is ~100 ms): a tenth of the suite.
botocore already shares one loader's answers among all the clients of a session
(`instance_cache`, which keeps them in the loader's `_cache`); here every loader keeps them in
one process-wide store instead, keyed by the loader's search paths as well (boto3 adds its own
to each session's loader), so a loader answers exactly what a fresh one would.
"""

from typing import Any

import botocore.session
from botocore.loaders import Loader

_answers: dict[tuple[tuple[str, ...], Any], Any] = {}


class _ByPaths:
    """A loader's `_cache`, in the shared store under the loader's search paths."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def _key(self, key: Any) -> tuple[tuple[str, ...], Any]:
        return tuple(self._loader.search_paths), key

    def __contains__(self, key: Any) -> bool:
        return self._key(key) in _answers

    def __getitem__(self, key: Any) -> Any:
        return _answers[self._key(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        _answers[self._key(key)] = value


def install() -> None:
    """Idempotent: every loader botocore's sessions make from now on uses the shared store."""
    made = botocore.session.create_loader  # type: ignore[attr-defined]
    if getattr(made, "shared_models", False):
        return

    def create_loader(search_path_string: str | None = None) -> Loader:
        loader: Loader = made(search_path_string)
        loader._cache = _ByPaths(loader)  # type: ignore[attr-defined]
        return loader

    create_loader.shared_models = True  # type: ignore[attr-defined]
    botocore.session.create_loader = create_loader  # type: ignore[attr-defined]
