"""The event stream of a run: every simulated user's steps in time order, turned into wire events."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contract.wire import Action
from producer.catalogue import Catalogue, Product
from producer.personas import Mode, Persona, Step
from producer.scenarios import AgentPool, scenario
from producer.timestamps import format_timestamp

# Share of sessions whose events say "Z": collected server-side, or by a tracker that reports
# UTC. The other sessions come from a client that stamps its local time with its offset, so a
# time-of-day rule can read the user's local hour from three sessions in four, not all.
Z_SESSION_SHARE = 0.25
# (user key, sub-type, home offset in minutes, step), in time order.
PlannedStep = tuple[int, str, int, Step]


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated event: the wire object plus the ground truth kept out of it."""

    user_id: str
    persona: Persona
    sub_type: str
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
        "game",
        "last_product",
        "offset_min",
        "page",
        "persona",
        "session",
        "session_id",
        "stamp_offset",
        "sub_type",
        "targets",
        "user_id",
    )

    def __init__(self, user_id: str, sub_type: str, agent: str, offset_min: int) -> None:
        self.user_id = user_id
        self.sub_type = sub_type
        self.persona = scenario(sub_type).persona
        self.agent = agent
        self.offset_min = offset_min
        self.stamp_offset: int | None = offset_min
        self.session = -1
        self.session_id = ""
        self.focus = ""
        self.game = ("", "")
        self.page = 0
        self.last_product: Product | None = None
        self.cart: list[Product] = []
        self.targets: tuple[Product, ...] = ()
        self.burst = -1
        self.burst_buys = 0
        self.cursor = 0
        self.emitted = False


class Timeline:
    """Iterate the wire events of a stream of planned steps (single use, like the stream)."""

    def __init__(self, *, run_id: str, seed: int, steps: Iterable[PlannedStep], catalogue: Catalogue) -> None:
        self._run_id = run_id
        self._steps = steps
        self._catalogue = catalogue
        self._all_products = tuple(p for c in catalogue.categories for p in catalogue.products[c])
        self._agents = {
            AgentPool.BROWSER: catalogue.browser_agents,
            AgentPool.BOT: catalogue.bot_agents,
            AgentPool.TOOL: catalogue.tool_agents,
        }
        # Its own stream: content choices never shift timing (the plan) or faults (Delivery).
        self._content = random.Random(f"{seed}:content")
        self._serial = 0
        self._events = 0

    def __iter__(self) -> Iterator[SimEvent]:
        users: dict[int, _User] = {}
        for key, sub_type, offset_min, step in self._steps:
            if step.mode is Mode.LEAVE:
                users.pop(key, None)  # the next step of this key belongs to a newcomer
                continue
            user = users.get(key)
            if user is None:
                user = users[key] = self._new_user(sub_type, offset_min)
            yield self._make_event(user, step)

    def _new_user(self, sub_type: str, offset_min: int) -> _User:
        self._serial += 1
        rng = self._content
        agents = self._agents[scenario(sub_type).agents]
        user = _User(f"{self._run_id}-u{self._serial:06d}", sub_type, rng.choice(agents), offset_min)
        user.cursor = rng.randrange(len(self._all_products))
        return user

    def _make_event(self, user: _User, step: Step) -> SimEvent:
        rng = self._content
        if step.session != user.session:
            user.session = step.session
            user.session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            user.focus = rng.choice(self._catalogue.categories)
            user.stamp_offset = None if rng.random() < Z_SESSION_SHARE else user.offset_min
            if step.mode is Mode.BET:
                market = rng.choice(self._catalogue.market_names)
                user.game = (market, rng.choice(self._catalogue.markets[market]))
        mode = step.mode
        if mode is Mode.BROWSE:
            action, category, product, amount = self._browse(user, step.opens_session)
        elif mode is Mode.CRAWL:
            action, category, product, amount = self._crawl(user)
        elif mode is Mode.BET:
            action, category, product, amount = self._bet(user, step.amount)
        elif mode is Mode.SKIM:
            action, category, product, amount = self._skim(user)
        elif mode is Mode.BURST:
            action, category, product, amount = self._burst(user, step.burst)
        elif mode is Mode.PAGE:
            action, category, product, amount = self._page(user)
        elif mode is Mode.RUSH:
            action, category, product, amount = self._rush(user)
        else:
            action, category, product, amount = self._checkout(user)
        self._events += 1
        fields = {
            "event_id": f"{self._run_id}-e{self._events:09d}",
            "user_id": user.user_id,
            "session_id": user.session_id,
            "action": action.value,
            "category": category,
            "product": product,
            "amount": None if amount is None else round(max(0.01, amount), 2),
            "timestamp": format_timestamp(step.ts_ms, user.stamp_offset),
            "user_agent": user.agent,
        }
        first = not user.emitted
        user.emitted = True
        return SimEvent(user.user_id, user.persona, user.sub_type, step.ts_ms, fields, first)

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

    def _page(self, user: _User) -> _Content:
        """The next item of the focus category's listing."""
        rng = self._content
        if rng.random() < 0.05:
            return Action.SEARCH, user.focus, None, None
        listing = self._catalogue.products[user.focus]
        user.page = (user.page + 1) % len(listing)
        user.last_product = item = listing[user.page]
        return Action.VIEW, item.category, item.name, None

    def _checkout(self, user: _User) -> _Content:
        """Buy the whole cart, putting the last item seen in it first if it is empty."""
        if not user.cart:
            user.cart.append(user.last_product or self._pick(user, stay=1.0))
        total = sum(p.price for p in user.cart)
        item = user.cart[-1]
        user.cart.clear()
        return Action.PURCHASE, item.category, item.name, total

    def _bet(self, user: _User, stake: float | None) -> _Content:
        """A wager on the session's game, or a look at it."""
        market, game = user.game
        if not market:
            market = self._catalogue.market_names[0]
            user.game = (market, game := self._catalogue.markets[market][0])
        if stake is None:
            return Action.VIEW, market, game, None
        return Action.PURCHASE, market, game, stake

    def _skim(self, user: _User) -> _Content:
        """The next page of the catalogue; now and then a search."""
        rng = self._content
        if rng.random() < 0.05:
            return Action.SEARCH, rng.choice(self._catalogue.categories), None, None
        user.cursor = (user.cursor + 1) % len(self._all_products)
        item = self._all_products[user.cursor]
        return Action.VIEW, item.category, item.name, None

    def _rush(self, user: _User) -> _Content:
        """Cart a few target items over and over; rarely buy one."""
        rng = self._content
        if not user.targets:
            user.targets = tuple(rng.choice(self._all_products) for _ in range(rng.randint(1, 3)))
        item = rng.choice(user.targets)
        r = rng.random()
        if r < 0.30:
            return Action.VIEW, item.category, item.name, None
        if r < 0.85:
            return Action.ADD_TO_CART, item.category, item.name, None
        if r < 0.95:
            return Action.REMOVE_FROM_CART, item.category, item.name, None
        return Action.PURCHASE, item.category, item.name, item.price


_Content = tuple[Action, str | None, str | None, float | None]
