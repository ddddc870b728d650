"""blindmatch: check hashes against a private list without revealing them.

Two layers, both in this package:

- `blindmatch.Client`, a ready client over grpcio: create it with the
  server's address and the operator's key, then `check(items)` (or
  `check_account(account, uploads)` in threshold mode).
- Below it, the sans-IO core that every binding shares (`Manifest`,
  `History`, `TableDownload`, `DeltaDownload`, `Table`, `Backoff`, ...), for
  apps that own their networking; the gRPC messages and stubs it speaks are
  `blindmatch.v1.blindmatch_pb2` and `blindmatch.v1.blindmatch_pb2_grpc`.

Every refusal is a `BlindmatchError` of one kind (bindings/ERRORS.md), whose
message (`str(e)`, also `e.reason`) is the same in every language.
"""

from ._native import *  # noqa: F401,F403  (the core: uniffi's module)
from ._native import BlindmatchError
from .client import Client, Incomplete, Refreshed  # noqa: F401


def _message(self: BaseException) -> str:
    return self.reason  # type: ignore[attr-defined]


# uniffi's exceptions show their fields ("reason='...'"); the message the
# other languages show is the reason alone.
BlindmatchError.__str__ = _message  # type: ignore[method-assign]
