"""Labelled clickstream traffic written from published behaviour, blind to the detector.

    .venv/bin/python scripts/independent_traffic.py --seed 1 --users 2500 --out data/independent/seed1

Writes DIR/events.ndjson (one event per line in the wire format of contract/wire.py, sorted by
time, every timestamp in the user's own zone), DIR/labels.csv (user_id, persona, behaviour) and
DIR/manifest.json (the arguments and the counts). The output is a function of --seed, --users
and --end alone. Each behaviour's model and its sources: docs/independent_traffic.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WINDOW_DAYS = 60  # events span the 60 days before --end
FIRST_DAY, LAST_DAY = 1, WINDOW_DAYS - 2  # local days whose every hour lies inside the window
SESSION_BREAK_MS = 30 * MINUTE_MS  # Catledge & Pitkow (1995): 25.5 min; analytics tools use 30
PERSONA_SHARES = (("normal", 0.80), ("impulsive", 0.12), ("bot", 0.08))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- places and clients ---------------------------------------------------------------------

# Where shoppers and bettors live; odd offsets (+05:30, +05:45, -03:30) and both hemispheres'
# daylight saving included, so local time cannot be recovered by whole-hour guesses.
HUMAN_ZONES: tuple[tuple[str, float], ...] = (
    ("Europe/London", 16),
    ("Europe/Berlin", 10),
    ("Europe/Madrid", 6),
    ("Europe/Warsaw", 4),
    ("Europe/Istanbul", 3),
    ("America/New_York", 12),
    ("America/Chicago", 6),
    ("America/Los_Angeles", 6),
    ("America/Sao_Paulo", 5),
    ("America/Mexico_City", 3),
    ("America/St_Johns", 1),
    ("Asia/Kolkata", 5),
    ("Asia/Kathmandu", 1),
    ("Asia/Tokyo", 4),
    ("Asia/Shanghai", 3),
    ("Australia/Sydney", 4),
    ("Africa/Lagos", 3),
    ("Asia/Dubai", 2),
)
# Fixed UTC-5 all year (no daylight saving), so "evening in UTC-5" holds on every date.
UTC_MINUS_5_ZONES: tuple[tuple[str, float], ...] = (
    ("America/Bogota", 4),
    ("America/Lima", 3),
    ("America/Guayaquil", 1),
    ("America/Panama", 1),
    ("America/Jamaica", 1),
    ("America/Cancun", 1),
)
UTC_PLUS_8_ZONES: tuple[tuple[str, float], ...] = (
    ("Asia/Shanghai", 3),
    ("Asia/Singapore", 2),
    ("Asia/Manila", 2),
    ("Asia/Hong_Kong", 1),
    ("Asia/Taipei", 1),
    ("Australia/Perth", 1),
)
# Bots run where servers are: cloud regions log UTC or their region's zone.
SERVER_ZONES: tuple[tuple[str, float], ...] = (
    ("UTC", 5),
    ("America/New_York", 2),
    ("America/Los_Angeles", 1),
    ("Europe/Amsterdam", 1),
    ("Europe/Berlin", 1),
    ("Asia/Singapore", 1),
)

BROWSER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    # A betting or shop app's embedded WebView.
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36",
)
# Clients that say what they are: HTTP libraries, crawling frameworks, headless browsers.
AUTOMATION_AGENTS: tuple[str, ...] = (
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Scrapy/2.11.2 (+https://scrapy.org)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36",
    "okhttp/4.12.0",
    "axios/1.7.7",
    "Java-http-client/21.0.2",
    "Wget/1.21.4",
    "Python/3.12 aiohttp/3.10.10",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
)

# Category and median item price (currency units), REES46-style category codes.
SHOP_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("electronics.smartphone", 320.0),
    ("electronics.audio.headphone", 60.0),
    ("computers.notebook", 700.0),
    ("appliances.kitchen.kettle", 35.0),
    ("apparel.shoes", 70.0),
    ("apparel.tshirt", 18.0),
    ("beauty.skincare", 22.0),
    ("kids.toys", 25.0),
    ("furniture.living_room.chair", 120.0),
    ("sport.bicycle", 450.0),
    ("grocery.coffee", 12.0),
    ("books.fiction", 14.0),
    ("stationery.paper", 9.0),
)
SPORTS = ("football", "tennis", "basketball", "horse_racing", "ice_hockey", "esports")
MARKETS = ("match_odds", "over_under_2.5", "next_goal", "handicap", "correct_score", "both_teams_score")

# Relative share of human sessions starting in each local hour 0..23: low at night, rising
# through the day, peaking 20:00-22:00 (Kihl et al. 2010, residential traffic).
SHOP_HOURS = (
    2,
    1,
    0.6,
    0.4,
    0.4,
    0.6,
    1.5,
    3,
    4,
    5,
    5.5,
    6,
    6,
    5.5,
    5.5,
    5.5,
    6,
    6.5,
    7.5,
    8.5,
    9,
    8.5,
    6.5,
    4,
)
OFFICE_HOURS = (0, 0, 0, 0, 0, 0, 0.2, 1, 4, 6, 6, 5, 4, 5, 6, 6, 5, 3, 1, 0.3, 0, 0, 0, 0)
# Sports betting follows fixtures: afternoons and evenings, more at weekends (LaBrie et al. 2007).
BET_HOURS = (
    1,
    0.5,
    0.3,
    0.2,
    0.2,
    0.2,
    0.3,
    0.6,
    1,
    1.5,
    2,
    2.5,
    3.5,
    4.5,
    5,
    5.5,
    6,
    6.5,
    7,
    7.5,
    7.5,
    6.5,
    4,
    2,
)
BET_WEEKDAYS = (0.8, 0.9, 1.0, 0.9, 1.0, 1.7, 1.6)  # Monday .. Sunday
ALL_WEEKDAYS = (1.0,) * 7
WORK_WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.15, 0.1)

# --- distributions ------------------------------------------------------------------------


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A log-normal draw given its median (not its mean)."""
    return median * math.exp(rng.gauss(0.0, sigma))


def seconds(rng: random.Random, median: float, sigma: float, *, floor: float) -> int:
    """A log-normal gap in milliseconds, never below floor seconds."""
    return round(max(floor, lognormal(rng, median, sigma)) * SECOND_MS)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's method; the normal approximation above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def inverse_gaussian(rng: random.Random, mean: float, shape: float) -> float:
    """An inverse-Gaussian draw (Michael, Schucany & Haas 1976)."""
    nu = rng.gauss(0.0, 1.0)
    y = nu * nu
    x = (
        mean
        + mean * mean * y / (2 * shape)
        - mean / (2 * shape) * math.sqrt(4 * mean * shape * y + (mean * y) ** 2)
    )
    return x if rng.random() <= mean / (mean + x) else mean * mean / x


def geometric(rng: random.Random, stop: float) -> int:
    """Failures before the first success of chance stop: 0, 1, 2 ..."""
    count = 0
    while rng.random() > stop:
        count += 1
    return count


def weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    """One option, drawn with its weight."""
    return rng.choices([value for value, _ in options], weights=[weight for _, weight in options])[0]


def human_stake(amount: float) -> float:
    """A stake as a person types it: whole or half units, coarser as it grows."""
    unit = 0.5 if amount < 10 else 1.0 if amount < 50 else 5.0 if amount < 500 else 10.0
    return max(0.5, round(amount / unit) * unit)


def price(amount: float) -> float:
    """A shelf price: two decimals, at least 0.99."""
    return max(0.99, round(amount, 2))


# --- one user's timeline --------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    """One event of a user before it gets its ids: UTC milliseconds and the wire fields."""

    ts_ms: int
    action: str
    session_id: str | None
    user_agent: str | None
    category: str | None = None
    product: str | None = None
    amount: float | None = None


@dataclass
class Actor:
    """A user being written: its random stream, zone, window, clients and the events so far."""

    rng: random.Random
    zone: ZoneInfo
    start_ms: int
    end_ms: int
    agents: tuple[str | None, ...]
    steps: list[Step] = field(default_factory=list)
    session: str | None = None
    agent: str | None = None

    def first_date(self) -> date:
        """The local date on which the window starts."""
        return self.local(self.start_ms).date()

    def local(self, ts_ms: int) -> datetime:
        """An instant in the user's zone."""
        return (EPOCH + timedelta(milliseconds=ts_ms)).astimezone(self.zone)

    def at_local(self, day: int, hour: float) -> int:
        """UTC milliseconds of a local wall time: hour (may pass 24) on the window's day-th local date."""
        midnight = datetime.combine(self.first_date() + timedelta(days=day), time(), tzinfo=self.zone)
        wall = midnight + timedelta(hours=hour)  # wall-clock arithmetic; fold 0 in a DST overlap
        return round(wall.timestamp() * SECOND_MS)

    def local_hour(self, ts_ms: int) -> float:
        """The local hour of day of an instant, with its fraction."""
        moment = self.local(ts_ms)
        return moment.hour + moment.minute / 60 + moment.second / 3600

    def pick_hour(self, profile: Sequence[float]) -> float:
        """A local start hour drawn from an hourly profile, uniform within the hour."""
        hour = self.rng.choices(range(24), weights=profile)[0]
        return hour + self.rng.random()

    def pick_days(
        self,
        count: int,
        *,
        first: int = FIRST_DAY,
        last: int = LAST_DAY,
        weekdays: Sequence[float] = ALL_WEEKDAYS,
        avoid: Sequence[int] = (),
    ) -> list[int]:
        """Distinct local days in [first, last] and not in avoid, drawn by weekday weight, in order."""
        days = [d for d in range(max(first, FIRST_DAY), min(last, LAST_DAY) + 1) if d not in avoid]
        start = self.first_date()
        weights = [weekdays[(start + timedelta(days=d)).weekday()] for d in days]
        chosen: set[int] = set()
        while len(chosen) < min(count, len(days)):
            chosen.add(self.rng.choices(days, weights=weights)[0])
        return sorted(chosen)

    def any_moment(self, *, span_ms: int) -> int:
        """A start time at which something lasting span_ms fits inside the window, a day from each end."""
        latest = max(self.start_ms + DAY_MS, self.end_ms - DAY_MS - span_ms)
        return self.rng.randint(self.start_ms + DAY_MS, latest)

    def after_last(self, ts_ms: int) -> int:
        """A session start no earlier than a session break after the user's last event."""
        if self.steps:
            return max(ts_ms, self.steps[-1].ts_ms + SESSION_BREAK_MS)
        return ts_ms

    def open_session(self, *, agent: str | None = None, cookies: bool = True) -> None:
        """Start a visit: a fresh session id (none without cookies) and the client it comes from."""
        self.session = self.token() if cookies else None
        self.agent = agent if agent is not None else self.rng.choice(self.agents)

    def token(self) -> str:
        """A random id as a web framework would issue it."""
        return f"{self.rng.getrandbits(64):016x}"

    def emit(
        self,
        ts_ms: int,
        action: str,
        *,
        category: str | None = None,
        product: str | None = None,
        amount: float | None = None,
    ) -> int:
        """Append an event in the current session and return its time."""
        self.steps.append(Step(ts_ms, action, self.session, self.agent, category, product, amount))
        return ts_ms


def shop_item(actor: Actor, category: tuple[str, float] | None = None) -> tuple[str, str, float]:
    """A catalogue item: category code, product id (popular ones more often) and its price."""
    code, median = category or actor.rng.choice(SHOP_CATEGORIES)
    rank = min(99_999, int(20 * actor.rng.paretovariate(1.0)))  # a long tail of rarely viewed items
    number = (hash_int(code) + rank * 7919) % 1_000_000
    return code, f"p{number:06d}", price(median * math.exp(0.25 * math.sin(number)))


def bet_market(actor: Actor, *, live: bool) -> tuple[str, str]:
    """A betting category and a market on one fixture."""
    sport = actor.rng.choice(SPORTS)
    fixture = actor.rng.randint(100_000, 999_999)
    category = f"betting.{sport}.live" if live else f"betting.{sport}"
    return category, f"evt{fixture}:{actor.rng.choice(MARKETS)}"


def hash_int(text: str) -> int:
    """A stable integer of a text (Python's hash() changes from run to run)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


# --- shared human routines --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShopHabits:
    """How one shopper browses: medians in seconds, chances per step."""

    dwell_s: float  # median time on a page (REES46 sample: 33 s between one user's events)
    dwell_sigma: float
    cart_chance: float
    buy_chance: float  # of a visit that has something in the cart
    checkout_s: float  # median time from the last add to the order (address, payment)
    login_chance: float


def shop_habits(rng: random.Random, *, dwell_s: float = 22.0) -> ShopHabits:
    """A shopper drawn from a heterogeneous population: some read fast, some slowly."""
    return ShopHabits(
        dwell_s=lognormal(rng, dwell_s, 0.55),
        dwell_sigma=rng.uniform(0.8, 1.1),
        cart_chance=rng.uniform(0.04, 0.14),
        buy_chance=rng.uniform(0.2, 0.5),
        checkout_s=lognormal(rng, 45.0, 0.4),
        login_chance=rng.uniform(0.1, 0.5),
    )


def dwell_gap(actor: Actor, habits: ShopHabits) -> int:
    """Time on a page: log-normal, with rare heavy-tailed interruptions (Barabási 2005)."""
    gap = seconds(actor.rng, habits.dwell_s, habits.dwell_sigma, floor=1.0)
    if actor.rng.random() < 0.03:
        gap += round(min(1200.0, 30.0 * actor.rng.paretovariate(1.2)) * SECOND_MS)
    return gap


def shop_visit(actor: Actor, start_ms: int, habits: ShopHabits, *, pages: int) -> int:
    """A shopping visit: login maybe, views and searches, a cart, perhaps an order; returns its end."""
    rng = actor.rng
    actor.open_session()
    t = actor.after_last(start_ms)
    if rng.random() < habits.login_chance:
        actor.emit(t, "login")
        t += seconds(rng, 4.0, 0.5, floor=1.2)
    cart: list[float] = []
    interest = rng.choice(SHOP_CATEGORIES)
    for page in range(pages):
        if page:
            t += dwell_gap(actor, habits)
        if rng.random() < 0.08:
            t += seconds(rng, 4.0, 0.5, floor=1.5)  # typing the query (Card, Moran & Newell: 0.28 s a key)
            actor.emit(t, "search", category=interest[0])
            continue
        code, product, amount = shop_item(actor, interest if rng.random() < 0.6 else None)
        actor.emit(t, "view", category=code, product=product)
        if rng.random() < habits.cart_chance:
            t += seconds(rng, 4.0, 0.6, floor=1.0)
            actor.emit(t, "add_to_cart", category=code, product=product)
            cart.append(amount)
            if rng.random() < 0.1:
                t += seconds(rng, 8.0, 0.6, floor=1.5)
                actor.emit(t, "remove_from_cart", category=code, product=product)
                cart.pop()
    if cart and rng.random() < habits.buy_chance:
        t += seconds(rng, habits.checkout_s, 0.5, floor=6.0)
        actor.emit(t, "purchase", category=interest[0], amount=price(sum(cart)))
    return t


def visit_pages(rng: random.Random, *, mean: float, shape: float, most: int = 120) -> int:
    """Pages of one visit: inverse Gaussian (Huberman et al. 1998), at least one."""
    return max(1, min(most, round(inverse_gaussian(rng, mean, shape))))


def place_bet(actor: Actor, t: int, *, stake: float, category: str, product: str, slip: bool) -> int:
    """A human bet: onto the slip, type the stake, confirm (about M + 3K + P, Card et al. 1983)."""
    if slip:
        actor.emit(t, "add_to_cart", category=category, product=product)
        t += seconds(actor.rng, 4.5, 0.4, floor=1.5)
    return actor.emit(t, "purchase", category=category, product=product, amount=human_stake(stake))


def casual_bet_visit(actor: Actor, start_ms: int, *, base_stake: float) -> int:
    """A recreational betting visit: look at a few markets, place one to a few similar stakes."""
    rng = actor.rng
    actor.open_session()
    t = actor.after_last(start_ms)
    if rng.random() < 0.85:
        actor.emit(t, "login")
        t += seconds(rng, 5.0, 0.5, floor=1.5)
    bets = 1 + min(11, poisson(rng, 1.5))
    for _ in range(bets):
        category, product = bet_market(actor, live=rng.random() < 0.3)
        for _ in range(rng.randint(1, 3)):
            actor.emit(t, "view", category=category, product=product)
            t += seconds(rng, 18.0, 0.8, floor=1.5)
        t = place_bet(
            actor,
            t,
            stake=base_stake * lognormal(rng, 1.0, 0.3),
            category=category,
            product=product,
            slip=True,
        )
        t += seconds(rng, 25.0, 0.9, floor=2.0)
    return t


def chasing_visit(actor: Actor, start_ms: int, *, base_stake: float, rhythm_s: float, minutes: float) -> int:
    """An in-play session of loss chasing: a bet every few seconds, the stake raised after each loss."""
    rng = actor.rng
    actor.open_session()
    t = actor.after_last(start_ms)
    stop = t + round(minutes * MINUTE_MS)
    actor.emit(t, "login")
    category, product = bet_market(actor, live=True)
    t += seconds(rng, 3.0, 0.4, floor=1.0)
    actor.emit(t, "view", category=category, product=product)
    stake = base_stake
    while t < stop:
        t += seconds(rng, rhythm_s, 0.35, floor=1.0)
        if rng.random() < 0.05:  # watching a passage of play before the next bet
            t += round(min(180.0, 15.0 * rng.paretovariate(1.5)) * SECOND_MS)
        if rng.random() < 0.1:  # a new market on the same fixture
            product = f"{product.split(':')[0]}:{rng.choice(MARKETS)}"
            actor.emit(t, "view", category=category, product=product)
            t += seconds(rng, 2.0, 0.4, floor=0.8)
        actor.emit(t, "purchase", category=category, product=product, amount=human_stake(stake))
        # Even-money bets lost a little more often than won; a loss is chased with a bigger stake.
        if rng.random() < 0.47:
            stake = max(base_stake, stake * 0.6)
        else:
            stake = min(5_000.0, stake * rng.uniform(1.2, 1.8))
    return t


# --- behaviours: normal -----------------------------------------------------------------------


def casual_shopper(actor: Actor) -> None:
    """Occasional visits, inverse-Gaussian pages per visit (Huberman et al. 1998), log-normal dwell."""
    rng = actor.rng
    habits = shop_habits(rng)
    visits = min(30, 1 + poisson(rng, rng.gammavariate(1.0, 1.0) * 8))  # visits/week: gamma mixed
    for day in actor.pick_days(visits):
        start = actor.at_local(day, actor.pick_hour(SHOP_HOURS))
        shop_visit(actor, start, habits, pages=visit_pages(rng, mean=8, shape=10))


def quick_pager(actor: Actor) -> None:
    """Short visits paging through lists 0.35-2 s a click (KLM keystroke; Weinreich et al. 2008)."""
    rng = actor.rng
    habits = shop_habits(rng)
    flick_s = rng.uniform(0.6, 1.5)  # median gap between two "next page" clicks
    visits = min(40, 1 + poisson(rng, rng.gammavariate(0.8, 6.0)))
    for day in actor.pick_days(visits):
        actor.open_session()
        t = actor.after_last(actor.at_local(day, actor.pick_hour(SHOP_HOURS)))
        interest = rng.choice(SHOP_CATEGORIES)
        if rng.random() < 0.4:
            actor.emit(t, "search", category=interest[0])
            t += seconds(rng, 3.0, 0.5, floor=1.0)
        cart: list[float] = []
        for run in range(1 + min(5, geometric(rng, 0.45))):
            if run:
                t += dwell_gap(actor, habits)
            for flick in range(3 + min(9, geometric(rng, 0.3))):
                if flick:
                    t += seconds(rng, flick_s, 0.3, floor=0.35)
                code, product, amount = shop_item(actor, interest)
                actor.emit(t, "view", category=code, product=product)
            for _ in range(rng.randint(1, 2)):  # a closer look at what caught the eye
                t += dwell_gap(actor, habits)
                code, product, amount = shop_item(actor, interest)
                actor.emit(t, "view", category=code, product=product)
            if rng.random() < habits.cart_chance * 2:
                t += seconds(rng, 4.0, 0.6, floor=1.0)
                actor.emit(t, "add_to_cart", category=code, product=product)
                cart.append(amount)
        if cart and rng.random() < habits.buy_chance:
            t += seconds(rng, habits.checkout_s, 0.5, floor=6.0)
            actor.emit(t, "purchase", category=interest[0], amount=price(sum(cart)))


def heavy_buyer(actor: Actor) -> None:
    """Frequent deliberate orders in office hours: the gamma tail of Pareto/NBD buying rates."""
    rng = actor.rng
    orders = min(40, 4 + poisson(rng, rng.gammavariate(3.0, 2.5)))  # Schmittlein et al. 1987
    item_price = lognormal(rng, 30.0, 0.6)
    for day in actor.pick_days(orders, weekdays=WORK_WEEKDAYS):
        actor.open_session()
        t = actor.after_last(actor.at_local(day, actor.pick_hour(OFFICE_HOURS)))
        if rng.random() < 0.8:
            actor.emit(t, "login")
            t += seconds(rng, 5.0, 0.5, floor=1.5)
        basket = 0.0
        for item in range(rng.randint(2, 6)):
            if item:
                t += seconds(rng, 6.0, 0.6, floor=1.5)
            code = rng.choice(SHOP_CATEGORIES)[0]
            actor.emit(t, "search", category=code)
            t += seconds(rng, 5.0, 0.5, floor=1.5)  # typing the item's name
            code, product, _ = shop_item(actor)
            actor.emit(t, "view", category=code, product=product)
            t += seconds(rng, 8.0, 0.6, floor=1.5)
            actor.emit(t, "add_to_cart", category=code, product=product)
            basket += item_price * lognormal(rng, 1.0, 0.5) * rng.randint(1, 4)
        t += seconds(rng, 35.0, 0.4, floor=10.0)
        actor.emit(t, "purchase", amount=price(basket))
        if rng.random() < 0.2:  # a forgotten item, ordered separately minutes later
            t += seconds(rng, 180.0, 0.5, floor=60.0)
            code, product, amount = shop_item(actor)
            actor.emit(t, "view", category=code, product=product)
            t += seconds(rng, 5.0, 0.5, floor=1.5)
            actor.emit(t, "add_to_cart", category=code, product=product)
            t += seconds(rng, 15.0, 0.4, floor=5.0)  # saved address and card
            actor.emit(t, "purchase", category=code, product=product, amount=amount)


def evening_shopper_utc_minus5(actor: Actor) -> None:
    """Relaxed evening shopping 19:00-23:30 local in UTC-5: the UTC night (Kihl et al. 2010 peak hours)."""
    rng = actor.rng
    habits = shop_habits(rng, dwell_s=30.0)
    for day in actor.pick_days(2 + poisson(rng, rng.gammavariate(2.0, 2.0))):
        start = actor.at_local(day, rng.uniform(19.0, 23.5))
        shop_visit(actor, start, habits, pages=visit_pages(rng, mean=14, shape=12))


def night_owl_utc_plus8(actor: Actor) -> None:
    """A late chronotype in UTC+8 (Roenneberg et al. 2007): calm visits starting 23:00-03:30 local."""
    rng = actor.rng
    bettor = rng.random() < 0.3
    habits = shop_habits(rng, dwell_s=28.0)
    base_stake = lognormal(rng, 5.0, 0.8)
    for day in actor.pick_days(2 + poisson(rng, rng.gammavariate(1.5, 3.0))):
        start = actor.at_local(day, 23.0 + rng.uniform(0.0, 4.5))
        if bettor:
            casual_bet_visit(actor, start, base_stake=base_stake)
        else:
            shop_visit(actor, start, habits, pages=visit_pages(rng, mean=10, shape=10))


def casual_bettor(actor: Actor) -> None:
    """Recreational bettor: a few betting days a month, a few small steady stakes (LaBrie et al. 2007)."""
    rng = actor.rng
    base_stake = min(200.0, lognormal(rng, 5.0, 0.9))
    days = min(40, 1 + poisson(rng, rng.gammavariate(1.5, 1.0) * 6.0))
    for day in actor.pick_days(days, weekdays=BET_WEEKDAYS):
        casual_bet_visit(actor, actor.at_local(day, actor.pick_hour(BET_HOURS)), base_stake=base_stake)


def inplay_bettor(actor: Actor) -> None:
    """Live-action bettor who follows whole matches, a bet every few minutes (LaPlante et al. 2008)."""
    rng = actor.rng
    base_stake = lognormal(rng, 10.0, 0.8)
    bet_every_s = rng.uniform(240.0, 600.0)
    look_every_s = 150.0
    for day in actor.pick_days(1 + min(19, poisson(rng, rng.gammavariate(1.5, 2.0))), weekdays=BET_WEEKDAYS):
        actor.open_session()
        t = actor.after_last(actor.at_local(day, actor.pick_hour(BET_HOURS)))
        stop = t + rng.randint(95, 115) * MINUTE_MS
        actor.emit(t, "login")
        category, fixture = bet_market(actor, live=True)
        while t < stop:
            t += round(max(10.0, rng.expovariate(1 / look_every_s)) * SECOND_MS)
            product = f"{fixture.split(':')[0]}:{rng.choice(MARKETS)}"
            actor.emit(t, "view", category=category, product=product)
            if rng.random() < look_every_s / bet_every_s:
                t += seconds(rng, 6.0, 0.5, floor=2.0)
                stake = base_stake * lognormal(rng, 1.0, 0.25)
                t = place_bet(actor, t, stake=stake, category=category, product=product, slip=True)


# --- behaviours: impulsive --------------------------------------------------------------------


def impulse_buyer(actor: Actor) -> None:
    """Evening episodes of several one-click buys seconds apart (Rook 1987; Verhagen & van Dolen 2011)."""
    rng = actor.rng
    habits = shop_habits(rng)
    speed = lognormal(rng, 1.0, 0.3)  # some are quicker than others
    weeks = rng.randint(2, 6)
    episode_days = actor.pick_days(
        sum(1 + poisson(rng, 1.0) for _ in range(weeks)), first=LAST_DAY - 7 * weeks
    )
    visits = [(actor.at_local(day, 19.0 + rng.uniform(0.0, 6.0)), True) for day in episode_days]
    for day in actor.pick_days(1 + poisson(rng, 3), avoid=episode_days):
        visits.append((actor.at_local(day, actor.pick_hour(SHOP_HOURS)), False))
    for start, episode in sorted(visits):
        if not episode:
            shop_visit(actor, start, habits, pages=visit_pages(rng, mean=8, shape=10))
            continue
        actor.open_session()
        t = actor.after_last(start)
        for _ in range(rng.randint(1, 4)):  # the trigger: a promotion, a recommendation
            code, product, _ = shop_item(actor)
            actor.emit(t, "view", category=code, product=product)
            t += seconds(rng, 5.0, 0.6, floor=1.0)
        for buy in range(3 + min(9, poisson(rng, 2.5))):
            if buy:
                t += seconds(rng, 2.0 * speed, 0.45, floor=0.5)
            code, product, amount = shop_item(actor)
            actor.emit(t, "view", category=code, product=product)
            t += seconds(rng, 1.8 * speed, 0.45, floor=0.5)
            actor.emit(t, "add_to_cart", category=code, product=product)
            t += seconds(rng, 2.6 * speed, 0.5, floor=0.7)  # "buy now" with a saved card
            actor.emit(t, "purchase", category=code, product=product, amount=amount)


def stake_chaser(actor: Actor) -> None:
    """In-play loss chasing late at night: bets seconds apart, rising stakes (Braverman & Shaffer 2012)."""
    rng = actor.rng
    base_stake = min(200.0, lognormal(rng, 10.0, 0.7))
    rhythm_s = rng.uniform(2.5, 9.0)  # just above a 2 s rule for most, below it for a few bets
    weeks = rng.randint(1, 5)
    chase_days = actor.pick_days(2 + min(2, poisson(rng, 1.0)), first=LAST_DAY - 7 * weeks)
    visits = [(actor.at_local(day, 21.0 + rng.uniform(0.0, 5.0)), True) for day in chase_days]
    for day in actor.pick_days(1 + poisson(rng, 1.0), avoid=chase_days):
        visits.append((actor.at_local(day, actor.pick_hour(BET_HOURS)), False))
    for start, chase in sorted(visits):
        if chase:
            chasing_visit(actor, start, base_stake=base_stake, rhythm_s=rhythm_s, minutes=rng.uniform(10, 45))
        else:
            casual_bet_visit(actor, start, base_stake=base_stake)


def night_session_gambler(actor: Actor) -> None:
    """Several sessions in one local night, night after night, stakes up each session (UKGC SR 3.4.3)."""
    rng = actor.rng
    base_stake = lognormal(rng, 8.0, 0.7)
    rhythm_s = rng.uniform(10.0, 30.0)
    for day in actor.pick_days(2 + min(4, poisson(rng, 1.0)), first=LAST_DAY - 28):
        t = actor.after_last(actor.at_local(day, 22.0 + rng.uniform(0.0, 2.5)))
        stake = base_stake
        for _ in range(3 + min(3, poisson(rng, 1.0))):
            if 5.5 <= actor.local_hour(t) < 22.0:
                break  # dawn: the night is over
            actor.open_session()
            actor.emit(t, "login")  # back after topping up
            category, product = bet_market(actor, live=rng.random() < 0.7)
            stop = t + round(rng.uniform(6.0, 18.0) * MINUTE_MS)
            t += seconds(rng, 6.0, 0.5, floor=1.5)
            while t < stop:
                if rng.random() < 0.2:
                    category, product = bet_market(actor, live=rng.random() < 0.7)
                    actor.emit(t, "view", category=category, product=product)
                    t += seconds(rng, 6.0, 0.5, floor=1.5)
                actor.emit(t, "purchase", category=category, product=product, amount=human_stake(stake))
                t += seconds(rng, rhythm_s, 0.5, floor=2.5)
            stake *= rng.uniform(1.15, 1.6)
            t += round(rng.uniform(10.0, 45.0) * MINUTE_MS)


def binge_shopper(actor: Actor) -> None:
    """Compulsive buying: late binges of many orders at human speed, spend rising weekly (Black 2007)."""
    rng = actor.rng
    habits = shop_habits(rng)
    weeks = rng.randint(3, 8)
    first = LAST_DAY - 7 * weeks
    base = lognormal(rng, 40.0, 0.5)
    growth = rng.uniform(1.08, 1.3)  # per week
    binge_days = actor.pick_days(sum(1 + poisson(rng, 0.8) for _ in range(weeks)), first=first)
    visits: list[tuple[int, int | None]] = [
        (actor.at_local(day, 21.0 + rng.uniform(0.0, 5.0)), day) for day in binge_days
    ]
    for day in actor.pick_days(1 + poisson(rng, 2), avoid=binge_days):
        visits.append((actor.at_local(day, actor.pick_hour(SHOP_HOURS)), None))
    for start, binge_day in sorted(visits, key=lambda visit: visit[0]):
        if binge_day is None:
            shop_visit(actor, start, habits, pages=visit_pages(rng, mean=8, shape=10))
            continue
        actor.open_session()
        t = actor.after_last(start)
        if rng.random() < 0.5:
            actor.emit(t, "login")
            t += seconds(rng, 4.0, 0.5, floor=1.2)
        week = max(0, binge_day - first) // 7
        for buy in range(5 + min(13, poisson(rng, 4.0))):
            if buy:
                t += seconds(rng, 6.0, 0.6, floor=2.0)
            for look in range(rng.randint(1, 4)):
                if look:
                    t += seconds(rng, 6.0, 0.6, floor=1.5)
                code, product, _ = shop_item(actor)
                actor.emit(t, "view", category=code, product=product)
            t += seconds(rng, 4.0, 0.5, floor=1.2)
            actor.emit(t, "add_to_cart", category=code, product=product)
            if rng.random() < 0.2:  # second thoughts: out, then back in
                t += seconds(rng, 5.0, 0.5, floor=1.5)
                actor.emit(t, "remove_from_cart", category=code, product=product)
                t += seconds(rng, 4.0, 0.5, floor=1.5)
                actor.emit(t, "add_to_cart", category=code, product=product)
            t += seconds(rng, 9.0, 0.5, floor=3.0)
            amount = base * growth**week * lognormal(rng, 1.0, 0.5)
            actor.emit(t, "purchase", category=code, product=product, amount=price(amount))


def relapsing_gambler(actor: Actor) -> None:
    """Weeks of recreational betting, then loss chasing in the last days (Xuan & Shaffer 2009)."""
    rng = actor.rng
    base_stake = min(100.0, lognormal(rng, 5.0, 0.8))
    relapse = LAST_DAY - rng.randint(0, 3)
    for day in actor.pick_days(4 + poisson(rng, 6.0), last=relapse - 10, weekdays=BET_WEEKDAYS):
        casual_bet_visit(actor, actor.at_local(day, actor.pick_hour(BET_HOURS)), base_stake=base_stake)
    rhythm_s = rng.uniform(2.5, 8.0)
    for day in actor.pick_days(rng.randint(1, 3), first=relapse, last=LAST_DAY):
        start = actor.at_local(day, 20.0 + rng.uniform(0.0, 6.0))
        chasing_visit(actor, start, base_stake=base_stake, rhythm_s=rhythm_s, minutes=rng.uniform(20, 50))


# --- behaviours: bot --------------------------------------------------------------------------


def catalogue_walk(actor: Actor) -> Callable[[], tuple[str, str]]:
    """Successive product pages of one category, as a crawler enumerates a listing."""
    code = actor.rng.choice(SHOP_CATEGORIES)[0]
    position = [actor.rng.randint(0, 900_000)]

    def next_page() -> tuple[str, str]:
        position[0] += 1
        return code, f"p{position[0] % 1_000_000:06d}"

    return next_page


def fast_random_scraper(actor: Actor) -> None:
    """Scraping (OWASP OAT-011) at machine speed with Poisson, not regular, gaps (Doran & Gokhale 2011)."""
    rng = actor.rng
    mean_gap_s = rng.uniform(0.08, 0.6)
    rotates_agent = rng.random() < 0.4
    cookies = rng.random() < 0.6  # many scrapers ignore cookies: no session at all
    agent = rng.choice(BROWSER_AGENTS)
    span_days = rng.randint(1, 10)
    first = actor.any_moment(span_ms=span_days * DAY_MS)
    for _ in range(2 + min(6, poisson(rng, 2.0))):
        t = actor.after_last(first + rng.randint(0, span_days * DAY_MS))
        actor.open_session(agent=rng.choice(BROWSER_AGENTS) if rotates_agent else agent, cookies=cookies)
        walk = catalogue_walk(actor)
        for _ in range(rng.randint(80, 300)):
            if rng.random() < 0.04:
                actor.emit(t, "search", category=walk()[0])
            else:
                code, product = walk()
                actor.emit(t, "view", category=code, product=product)
            t += max(15, round(rng.expovariate(1 / mean_gap_s) * SECOND_MS))


def slow_regular_crawler(actor: Actor) -> None:
    """A polite crawler: a page every 1.5-4 min like clockwork, a day or more non-stop (Tan & Kumar 2002)."""
    rng = actor.rng
    period_s = rng.uniform(90.0, 240.0)
    jitter_s = period_s * rng.uniform(0.002, 0.02)
    span_ms = round(rng.uniform(24.0, 40.0) * HOUR_MS)
    t = actor.any_moment(span_ms=span_ms)
    stop = t + span_ms
    actor.open_session(agent=rng.choice(BROWSER_AGENTS))
    walk = catalogue_walk(actor)
    while t < stop:
        code, product = walk()
        actor.emit(t, "view", category=code, product=product)
        t += round(max(1.0, rng.gauss(period_s, jitter_s)) * SECOND_MS)


def human_mimic_monitor(actor: Actor) -> None:
    """Price monitor with human think times that never rests: a day or two non-stop (Iliou et al. 2021)."""
    rng = actor.rng
    median_s = rng.uniform(40.0, 90.0)
    sigma = rng.uniform(0.6, 1.0)
    span_ms = round(rng.uniform(25.0, 36.0) * HOUR_MS)
    t = actor.any_moment(span_ms=span_ms)
    stop = t + span_ms
    agent = rng.choice(BROWSER_AGENTS)  # through residential proxies: a person's zone, a browser's UA
    rotate_at = t
    while t < stop:
        if t >= rotate_at:  # a fresh cookie jar every few hours: looks like separate visits
            actor.open_session(agent=agent)
            rotate_at = t + round(rng.uniform(2.0, 6.0) * HOUR_MS)
        code, product, _ = shop_item(actor)
        if rng.random() < 0.03:
            actor.emit(t, "search", category=code)
        else:
            actor.emit(t, "view", category=code, product=product)
        t += round(min(600.0, max(1.0, lognormal(rng, median_s, sigma))) * SECOND_MS)


def declared_tool_client(actor: Actor) -> None:
    """A client naming its tool (curl, requests, HeadlessChrome): stock checks or cart hoarding (OAT-021)."""
    rng = actor.rng
    agent = rng.choice(AUTOMATION_AGENTS)
    hoards = rng.random() < 0.4
    pace_s = rng.uniform(0.5, 6.0)
    span_days = rng.randint(1, 7)
    first = actor.any_moment(span_ms=span_days * DAY_MS)
    for _ in range(2 + min(8, poisson(rng, 3.0))):
        t = actor.after_last(first + rng.randint(0, span_days * DAY_MS))
        actor.open_session(agent=agent, cookies=hoards)
        requests = rng.randint(40, 200)
        if not hoards:
            walk = catalogue_walk(actor)
            for _ in range(requests):
                code, product = walk()
                actor.emit(t, "view", category=code, product=product)
                t += seconds(rng, pace_s, 0.5, floor=0.2)
            continue
        code, product, _ = shop_item(actor)
        while requests > 0:  # hold the item in a cart so no one else can buy it, renew the hold
            actor.emit(t, "add_to_cart", category=code, product=product)
            hold_until = t + round(rng.uniform(2.0, 10.0) * MINUTE_MS)
            while t < hold_until and requests > 0:
                t += round(rng.uniform(5.0, 20.0) * SECOND_MS)
                actor.emit(t, "view", category=code, product=product)
                requests -= 1
            t += seconds(rng, 0.3, 0.4, floor=0.05)
            actor.emit(t, "remove_from_cart", category=code, product=product)
            t += seconds(rng, 0.3, 0.4, floor=0.05)
            requests -= 2


def checkout_sniper(actor: Actor) -> None:
    """Scalping/sniping (OWASP OAT-005, OAT-013): poll a page steadily, then buy in under a second."""
    rng = actor.rng
    poll_s = rng.uniform(2.0, 6.0)
    agent = rng.choice(BROWSER_AGENTS)
    for _ in range(3 + min(5, poisson(rng, 2.0))):
        poll_ms = round(rng.uniform(3.0, 12.0) * MINUTE_MS)
        ready = actor.after_last(actor.any_moment(span_ms=2 * HOUR_MS)) + poll_ms
        drop = ready + (-ready) % HOUR_MS  # releases go live on the hour
        t = drop - poll_ms
        actor.open_session(agent=agent)
        actor.emit(t, "login")
        t += round(rng.uniform(0.3, 1.0) * SECOND_MS)
        code, product, amount = shop_item(actor)
        while t < drop:
            actor.emit(t, "view", category=code, product=product)
            t += round(max(0.2, rng.gauss(poll_s, poll_s * 0.03)) * SECOND_MS)
        for _ in range(1 + min(3, poisson(rng, 1.0))):
            actor.emit(t, "view", category=code, product=product)
            t += round(rng.uniform(0.08, 0.4) * SECOND_MS)
            actor.emit(t, "add_to_cart", category=code, product=product)
            t += round(rng.uniform(0.15, 0.7) * SECOND_MS)
            actor.emit(t, "purchase", category=code, product=product, amount=amount)
            t += round(rng.uniform(0.05, 0.3) * SECOND_MS)


def credential_cracker(actor: Actor) -> None:
    """Credential cracking/stuffing (OWASP OAT-007, OAT-008): bursts of logins at irregular machine pace."""
    rng = actor.rng
    rotates_agent = rng.random() < 0.5
    cookies = rng.random() < 0.5
    agent = rng.choice(BROWSER_AGENTS)
    span_days = rng.randint(1, 6)
    first = actor.any_moment(span_ms=span_days * DAY_MS)
    for _ in range(2 + min(10, poisson(rng, 3.0))):
        t = actor.after_last(first + rng.randint(0, span_days * DAY_MS))
        for _ in range(rng.randint(40, 250)):
            actor.open_session(agent=rng.choice(BROWSER_AGENTS) if rotates_agent else agent, cookies=cookies)
            actor.emit(t, "login")
            t += round(rng.uniform(0.15, 2.5) * SECOND_MS)
        if rng.random() < 0.5:  # a pair that worked: a look inside the account
            for _ in range(rng.randint(1, 3)):
                code, product, _ = shop_item(actor)
                actor.emit(t, "view", category=code, product=product)
                t += round(rng.uniform(0.5, 2.0) * SECOND_MS)


def betting_bot(actor: Actor) -> None:
    """Automated in-play betting: bets on a fixed clock, a fixed staking rule, match after match, any hour."""
    rng = actor.rng
    cadence_s = rng.uniform(15.0, 40.0)
    jitter_s = cadence_s * rng.uniform(0.01, 0.03)
    flat = rng.random() < 0.6
    flat_stake = float(rng.randint(5, 50))
    bankroll = rng.uniform(500.0, 5_000.0)
    fraction = rng.uniform(0.005, 0.03)  # Kelly-style: a share of the bankroll, to the cent
    matches = 2 + min(4, poisson(rng, 1.5))
    t = actor.any_moment(span_ms=matches * 4 * HOUR_MS)
    agent = rng.choice(BROWSER_AGENTS)
    for _ in range(matches):
        actor.open_session(agent=agent)
        category, fixture = bet_market(actor, live=True)
        stop = t + rng.randint(90, 120) * MINUTE_MS
        actor.emit(t, "login")
        tick = t + round(rng.uniform(1.0, 3.0) * SECOND_MS)
        while tick < stop:
            product = f"{fixture.split(':')[0]}:{rng.choice(MARKETS)}"
            if rng.random() < 0.3:  # read the odds a moment before betting on them
                actor.emit(
                    tick - round(rng.uniform(0.15, 0.4) * SECOND_MS),
                    "view",
                    category=category,
                    product=product,
                )
            stake = flat_stake if flat else round(bankroll * fraction * lognormal(rng, 1.0, 0.15), 2)
            actor.emit(tick, "purchase", category=category, product=product, amount=max(0.5, stake))
            tick += round(max(1.0, rng.gauss(cadence_s, jitter_s)) * SECOND_MS)
        t = stop + round(rng.uniform(0.0, 150.0) * MINUTE_MS)


# --- the behaviour table ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One labelled behaviour: its persona, share of that persona's users, zones and clients."""

    name: str
    persona: str
    share: float
    zones: tuple[tuple[str, float], ...]
    clients: str  # "human": one or two browsers; "bot": the behaviour picks its own
    write: Callable[[Actor], None]


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour("casual_shopper", "normal", 0.26, HUMAN_ZONES, "human", casual_shopper),
    Behaviour("quick_pager", "normal", 0.14, HUMAN_ZONES, "human", quick_pager),
    Behaviour("heavy_buyer", "normal", 0.12, HUMAN_ZONES, "human", heavy_buyer),
    Behaviour(
        "evening_shopper_utc_minus5", "normal", 0.12, UTC_MINUS_5_ZONES, "human", evening_shopper_utc_minus5
    ),
    Behaviour("night_owl_utc_plus8", "normal", 0.10, UTC_PLUS_8_ZONES, "human", night_owl_utc_plus8),
    Behaviour("casual_bettor", "normal", 0.16, HUMAN_ZONES, "human", casual_bettor),
    Behaviour("inplay_bettor", "normal", 0.10, HUMAN_ZONES, "human", inplay_bettor),
    Behaviour("impulse_buyer", "impulsive", 0.22, HUMAN_ZONES, "human", impulse_buyer),
    Behaviour("stake_chaser", "impulsive", 0.22, HUMAN_ZONES, "human", stake_chaser),
    Behaviour("night_session_gambler", "impulsive", 0.20, HUMAN_ZONES, "human", night_session_gambler),
    Behaviour("binge_shopper", "impulsive", 0.18, HUMAN_ZONES, "human", binge_shopper),
    Behaviour("relapsing_gambler", "impulsive", 0.18, HUMAN_ZONES, "human", relapsing_gambler),
    Behaviour("fast_random_scraper", "bot", 0.16, SERVER_ZONES, "bot", fast_random_scraper),
    Behaviour("slow_regular_crawler", "bot", 0.14, SERVER_ZONES, "bot", slow_regular_crawler),
    Behaviour("human_mimic_monitor", "bot", 0.16, HUMAN_ZONES, "bot", human_mimic_monitor),
    Behaviour("declared_tool_client", "bot", 0.14, SERVER_ZONES, "bot", declared_tool_client),
    Behaviour("checkout_sniper", "bot", 0.14, SERVER_ZONES, "bot", checkout_sniper),
    Behaviour("credential_cracker", "bot", 0.12, SERVER_ZONES, "bot", credential_cracker),
    Behaviour("betting_bot", "bot", 0.14, SERVER_ZONES, "bot", betting_bot),
)
BEHAVIOUR_BY_NAME = {b.name: b for b in BEHAVIOURS}


def apportion(total: int, shares: Sequence[float]) -> list[int]:
    """Split total into whole counts proportional to shares (largest remainder)."""
    exact = [total * s / sum(shares) for s in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (exact[i] - counts[i], -i), reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_behaviours(users: int, seed: int) -> list[Behaviour]:
    """The behaviour of each user index: 80/12/8 by persona, each persona split by share, shuffled."""
    plan: list[Behaviour] = []
    persona_counts = apportion(users, [share for _, share in PERSONA_SHARES])
    for (persona, _), count in zip(PERSONA_SHARES, persona_counts, strict=True):
        members = [b for b in BEHAVIOURS if b.persona == persona]
        for behaviour, n in zip(members, apportion(count, [b.share for b in members]), strict=True):
            plan += [behaviour] * n
    random.Random(f"independent-plan:{seed}").shuffle(plan)
    return plan


@dataclass(frozen=True, slots=True)
class User:
    """A written user: ids, label, zone and its events in time order."""

    user_id: str
    behaviour: Behaviour
    zone: ZoneInfo
    steps: list[Step]


def write_user(behaviour: Behaviour, *, seed: int, index: int, start_ms: int, end_ms: int) -> User:
    """One user of a behaviour, from its own random stream: the same seed and index give the same user."""
    rng = random.Random(f"independent-user:{seed}:{index}")
    zone = ZoneInfo(weighted(rng, behaviour.zones))
    agents: tuple[str | None, ...] = ()
    if behaviour.clients == "human":
        agents = tuple(rng.sample(BROWSER_AGENTS, rng.choice((1, 1, 2))))
        if rng.random() < 0.04:
            agents = (None,)  # an app that sends no user agent
    actor = Actor(rng, zone, start_ms, end_ms, agents or (None,))
    behaviour.write(actor)
    steps = sorted(actor.steps, key=lambda step: step.ts_ms)
    previous = -1
    for step in steps:  # one user's events strictly in order: ties would make the order arbitrary
        step.ts_ms = max(step.ts_ms, previous + 1)
        previous = step.ts_ms
    kept = [s for s in steps if start_ms <= s.ts_ms < end_ms]
    user_id = "u" + hashlib.sha256(f"independent:{seed}:{index}".encode()).hexdigest()[:12]
    return User(user_id, behaviour, zone, kept)


def wire_event(user: User, step: Step, *, event_id: str) -> dict[str, object]:
    """The wire fields of one event, timestamp in the user's zone with milliseconds."""
    moment = (EPOCH + timedelta(milliseconds=step.ts_ms)).astimezone(user.zone)
    event: dict[str, object] = {
        "event_id": event_id,
        "user_id": user.user_id,
        "action": step.action,
        "timestamp": moment.isoformat(timespec="milliseconds"),
    }
    optional = {
        "session_id": step.session_id,
        "category": step.category,
        "product": step.product,
        "amount": step.amount,
        "user_agent": step.user_agent,
    }
    event.update({key: value for key, value in optional.items() if value is not None})
    return event


@dataclass(frozen=True, slots=True)
class Traffic:
    """A written run: the users and every event line sorted by time."""

    users: list[User]
    lines: list[str]


def write_traffic(*, seed: int, users: int, end: datetime) -> Traffic:
    """Every user of a run and its events as sorted wire lines."""
    end_ms = (end - EPOCH) // timedelta(milliseconds=1)
    start_ms = end_ms - WINDOW_DAYS * DAY_MS
    written = [
        write_user(b, seed=seed, index=i, start_ms=start_ms, end_ms=end_ms)
        for i, b in enumerate(plan_behaviours(users, seed))
    ]
    keyed: list[tuple[int, str, str]] = []
    for index, user in enumerate(written):
        for k, step in enumerate(user.steps):
            event_id = hashlib.sha256(f"independent:{seed}:{index}:{k}".encode()).hexdigest()[:24]
            line = json.dumps(wire_event(user, step, event_id=event_id), separators=(",", ":"))
            keyed.append((step.ts_ms, event_id, line))
    keyed.sort()
    return Traffic(written, [line for _, _, line in keyed])


def save(traffic: Traffic, out: Path, *, seed: int, end: datetime) -> dict[str, object]:
    """Write events.ndjson, labels.csv and manifest.json into out; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "events.ndjson").open("w", encoding="utf-8", newline="\n") as events:
        for line in traffic.lines:
            events.write(line + "\n")
    with (out / "labels.csv").open("w", encoding="utf-8", newline="") as labels:
        writer = csv.writer(labels)
        writer.writerow(["user_id", "persona", "behaviour"])
        for user in traffic.users:
            writer.writerow([user.user_id, user.behaviour.persona, user.behaviour.name])
    manifest: dict[str, object] = {
        "seed": seed,
        "users": len(traffic.users),
        "end": end.isoformat(),
        "events": len(traffic.lines),
        "users_by_behaviour": dict(Counter(u.behaviour.name for u in traffic.users)),
        "events_by_behaviour": dict(
            sum((Counter({u.behaviour.name: len(u.steps)}) for u in traffic.users), Counter())
        ),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def parse_end(text: str | None) -> datetime:
    """--end as an aware UTC time; by default the start of the current UTC hour."""
    if text is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--users", type=int, required=True, help="users in all (80/12/8 %% by persona)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the three files")
    parser.add_argument("--end", help="ISO time every event precedes (default: this UTC hour's start)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Write one run."""
    args = parse_args(argv)
    if args.users < 1:
        print("--users must be at least 1", file=sys.stderr)
        return 2
    end = parse_end(args.end)
    manifest = save(
        write_traffic(seed=args.seed, users=args.users, end=end), args.out, seed=args.seed, end=end
    )
    print(
        f"{manifest['events']:,} events of {manifest['users']:,} users up to {end.isoformat()} in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
