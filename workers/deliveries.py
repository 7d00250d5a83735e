"""Per-batch delivery attempts and dead letters, kept in Redis beside the queue."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis

from contract.wire import now_ms

ATTEMPTS_PREFIX = "ecomrisk:attempts:"
DEAD_LETTERS = "ecomrisk:dead_letters"
_ATTEMPTS_TTL_S = 7 * 86_400


@dataclass
class DeliveryBook:
    """Counts deliveries of each batch id so a poison batch cannot loop forever."""

    client: redis.Redis[bytes]

    @classmethod
    def from_url(cls, url: str) -> DeliveryBook:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10))

    def count_attempt(self, batch_id: str) -> int:
        """Record one more delivery of batch_id and return how many there have been."""
        key = ATTEMPTS_PREFIX + batch_id
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, _ATTEMPTS_TTL_S)
        attempts, _ = pipe.execute()
        return int(attempts)

    def forget(self, batch_id: str) -> None:
        """The batch reached the ledger: drop its counter and any dead letter."""
        pipe = self.client.pipeline()
        pipe.delete(ATTEMPTS_PREFIX + batch_id)
        pipe.hdel(DEAD_LETTERS, batch_id)
        pipe.execute()

    def dead_letter(self, batch_id: str, *, reason: str) -> None:
        """Park a batch that could not be stored or quarantined; its raw log still has it."""
        record = orjson.dumps({"reason": reason, "at_ms": now_ms()})
        pipe = self.client.pipeline()
        pipe.hset(DEAD_LETTERS, batch_id, record)
        # Reconcile re-sends it once storage is back: with the spent count it would be taken
        # for poison on that first delivery and quarantined whole instead of stored.
        pipe.delete(ATTEMPTS_PREFIX + batch_id)
        pipe.execute()

    def dead_letters(self) -> dict[str, dict[str, object]]:
        """Every parked batch id with its reason."""
        raw = self.client.hgetall(DEAD_LETTERS)
        return {key.decode(): orjson.loads(value) for key, value in raw.items()}
