"""The merged timeline: many concurrent simulated users, their events in time order."""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from contract.wire import Action
from producer.catalogue import Catalogue, Product
from producer.personas import Mode, Persona, Step, life_steps, steady_steps
from producer.timestamps import format_timestamp

# Home UTC offsets of users (minutes); about half of each user's events still say "Z".
_OFFSETS_MIN = (0, 60, 120, 330, -300, -180, 540, -480)
_Z_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated event: the wire object plus the ground truth kept out of it."""

    user_id: str
    persona: Persona
    ts_ms: int
    fields: Mapping[str, Any]
    first_of_user: bool


class _User:
    """A simulated user's identity and shopping state (content only; timing lives in steps)."""

    __slots__ = (
        "agent",
        "burst",
        "burst_buys",
        "cart",
        "cursor",
        "emitted",
        "focus",
        "last_product",
        "offset_min",
        "persona",
        "session",
        "session_id",
        "user_id",
    )

    def __init__(self, user_id: str, persona: Persona, agent: str, offset_min: int) -> None:
        self.user_id = user_id
        self.persona = persona
        self.agent = agent
        self.offset_min = offset_min
        self.session = -1
        self.session_id = ""
        self.focus = ""
        self.last_product: Product | None = None
        self.cart: list[Product] = []
        self.burst = -1
        self.burst_buys = 0
        self.cursor = 0
        self.emitted = False


def merged_steps(personas: Sequence[Persona], *, seed: int, start_ms: int) -> Iterator[tuple[int, Step]]:
    """(slot, step) for every population slot in time order; after a LEAVE a newcomer follows."""
    timing = random.Random(f"{seed}:timing")
    phase = random.Random(f"{seed}:phase")
    streams = [steady_steps(p, timing=timing, phase=phase, start_ms=start_ms) for p in personas]
    pending = [next(stream) for stream in streams]
    heap = [(step.ts_ms, slot) for slot, step in enumerate(pending)]
    heapq.heapify(heap)
    while heap:
        slot = heap[0][1]
        step = pending[slot]
        yield slot, step
        if step.mode is Mode.LEAVE:
            streams[slot] = life_steps(personas[slot], timing, step.ts_ms)
        pending[slot] = following = next(streams[slot])
        heapq.heapreplace(heap, (following.ts_ms, slot))


def last_event_ms(personas: Sequence[Persona], *, seed: int, start_ms: int, count: int) -> int:
    """When the count-th event of a run happens, found without making any event content."""
    last = start_ms
    events = (
        step
        for _, step in merged_steps(personas, seed=seed, start_ms=start_ms)
        if step.mode is not Mode.LEAVE
    )
    for step in islice(events, count):
        last = step.ts_ms
    return last


class Timeline:
    """Iterate the events of a fixed-size population, each slot refilled when its user leaves."""

    def __init__(
        self,
        *,
        seed: int,
        run_id: str,
        start_ms: int,
        personas: Sequence[Persona],
        catalogue: Catalogue,
    ) -> None:
        self._run_id = run_id
        self._start_ms = start_ms
        self._catalogue = catalogue
        self._all_products = tuple(p for c in catalogue.categories for p in catalogue.products[c])
        self._seed = seed
        # Its own stream: content choices never shift timing (merged_steps) or faults (Delivery).
        self._content = random.Random(f"{seed}:content")
        self._personas = tuple(personas)
        self._serial = 0
        self._events = 0

    def __iter__(self) -> Iterator[SimEvent]:
        users: list[_User | None] = [None] * len(self._personas)
        for slot, step in merged_steps(self._personas, seed=self._seed, start_ms=self._start_ms):
            if step.mode is Mode.LEAVE:
                users[slot] = None  # the next step of this slot belongs to a newcomer
                continue
            user = users[slot]
            if user is None:
                user = users[slot] = self._new_user(self._personas[slot])
            yield self._make_event(user, step)

    def _new_user(self, persona: Persona) -> _User:
        self._serial += 1
        rng = self._content
        agents = self._catalogue.bot_agents if persona is Persona.BOT else self._catalogue.browser_agents
        user = _User(
            f"{self._run_id}-u{self._serial:06d}",
            persona,
            rng.choice(agents),
            rng.choice(_OFFSETS_MIN),
        )
        user.cursor = rng.randrange(len(self._all_products))
        return user

    def _make_event(self, user: _User, step: Step) -> SimEvent:
        rng = self._content
        if step.session != user.session:
            user.session = step.session
            user.session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            user.focus = rng.choice(self._catalogue.categories)
        if step.mode is Mode.CRAWL:
            action, category, product, amount = self._crawl(user)
        elif step.mode is Mode.BURST:
            action, category, product, amount = self._burst(user, step.burst)
        else:
            action, category, product, amount = self._browse(user, step.opens_session)
        self._events += 1
        offset = None if rng.random() < _Z_SHARE else user.offset_min
        fields = {
            "event_id": f"{self._run_id}-e{self._events:09d}",
            "user_id": user.user_id,
            "session_id": user.session_id,
            "action": action.value,
            "category": category,
            "product": product,
            "amount": None if amount is None else round(max(0.01, amount), 2),
            "timestamp": format_timestamp(step.ts_ms, offset),
            "user_agent": user.agent,
        }
        first = not user.emitted
        user.emitted = True
        return SimEvent(user.user_id, user.persona, step.ts_ms, fields, first)

    def _pick(self, user: _User, *, stay: float) -> Product:
        rng = self._content
        if rng.random() >= stay:
            user.focus = rng.choice(self._catalogue.categories)
        user.last_product = rng.choice(self._catalogue.products[user.focus])
        return user.last_product

    def _browse(self, user: _User, opens_session: bool) -> _Content:
        rng = self._content
        if opens_session and rng.random() < 0.3:
            return Action.LOGIN, None, None, None
        r = rng.random()
        if r < 0.60 or (r >= 0.90 and not user.cart):
            item = self._pick(user, stay=0.75)
            return Action.VIEW, item.category, item.name, None
        if r < 0.80:
            if rng.random() < 0.4:
                user.focus = rng.choice(self._catalogue.categories)
            return Action.SEARCH, user.focus, None, None
        if r < 0.90:
            item = user.last_product or self._pick(user, stay=1.0)
            user.cart.append(item)
            return Action.ADD_TO_CART, item.category, item.name, None
        if r < 0.94:
            item = user.cart.pop(rng.randrange(len(user.cart)))
            return Action.REMOVE_FROM_CART, item.category, item.name, None
        total = sum(p.price for p in user.cart)
        item = user.cart[-1]
        user.cart.clear()
        return Action.PURCHASE, item.category, item.name, total

    def _burst(self, user: _User, burst: int) -> _Content:
        rng = self._content
        if burst != user.burst:
            user.burst, user.burst_buys = burst, 0
        r = rng.random()
        if r < 0.10:
            return Action.SEARCH, user.focus, None, None
        if r < 0.40:
            item = self._pick(user, stay=0.8)
            return Action.VIEW, item.category, item.name, None
        item = user.last_product or self._pick(user, stay=1.0)
        if r < 0.65:
            user.cart.append(item)
            return Action.ADD_TO_CART, item.category, item.name, None
        # "Buy now" without the cart, each purchase of a burst dearer than the last.
        quantity = rng.choice((1, 1, 1, 2, 3))
        amount = item.price * quantity * (1.0 + 0.5 * user.burst_buys)
        user.burst_buys += 1
        user.last_product = None
        return Action.PURCHASE, item.category, item.name, amount

    def _crawl(self, user: _User) -> _Content:
        rng = self._content
        r = rng.random()
        if r < 0.01:
            return Action.LOGIN, None, None, None
        if r < 0.26:
            return Action.SEARCH, rng.choice(self._catalogue.categories), None, None
        # Scrapers walk the catalogue in order rather than following interest.
        user.cursor = (user.cursor + 1) % len(self._all_products)
        item = self._all_products[user.cursor]
        if r < 0.28:
            return Action.ADD_TO_CART, item.category, item.name, None
        return Action.VIEW, item.category, item.name, None


_Content = tuple[Action, str | None, str | None, float | None]
