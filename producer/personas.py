"""The three personas and the timing primitives the scenario sub-types are written with.

A simulated user's behaviour is a lazy stream of timed steps (see producer/scenarios.py for
the sub-types). Nothing here knows the detector: the numbers are human or machine facts
cited where they are used.
"""

from __future__ import annotations

import math
import random
from enum import StrEnum
from typing import NamedTuple

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
# The local night towards which impulsive buyers lean (hours, local time of the user).
NIGHT_START_HOUR = 0
NIGHT_END_HOUR = 6
# A human gap longer than this is not a pause inside a visit but the end of it (s).
HUMAN_GAP_CAP_S = 900.0
# Spread (sigma of the log) of human think times: dwell times are heavy-tailed
# (Liu, White & Dumais 2010, Weibull with negative ageing); a log-normal of this spread matches.
HUMAN_GAP_SIGMA = 0.7


class Persona(StrEnum):
    """Ground-truth behaviour of a simulated user; only ever written to the labels file."""

    NORMAL = "normal"
    IMPULSIVE = "impulsive"
    BOT = "bot"


class Mode(StrEnum):
    """What a step means for the choice of action."""

    BROWSE = "browse"  # a person shopping: views, searches, cart, the odd purchase
    PAGE = "page"  # the next item of a listing, paged quickly
    CHECKOUT = "checkout"  # buy what is in the cart
    BURST = "burst"  # an impulsive run of cart and "buy now" actions
    BET = "bet"  # a wager (a purchase with the step's amount) or, without one, a look at the game
    CRAWL = "crawl"  # a scraper walking the catalogue
    SKIM = "skim"  # page views in catalogue order, almost nothing else
    RUSH = "rush"  # carting a few target items at machine speed
    LEAVE = "leave"


class Step(NamedTuple):
    """One moment a user acts (or leaves, for Mode.LEAVE)."""

    ts_ms: int
    session: int
    mode: Mode
    burst: int
    opens_session: bool
    amount: float | None = None  # the stake of a Mode.BET step; None is a look, not a bet


def human_gap_s(rng: random.Random, median_s: float, fast_share: float = 0.0) -> float:
    """A person's think time between two actions; some people double-click or skim."""
    if fast_share and rng.random() < fast_share:
        return rng.uniform(0.3, 1.9)
    return min(HUMAN_GAP_CAP_S, rng.lognormvariate(math.log(median_s), HUMAN_GAP_SIGMA))


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    """A value spread evenly over orders of magnitude between low and high."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def window_length_ms(window: tuple[float, float]) -> int:
    """The length of a local-time window given as (start hour, end hour), which may wrap midnight."""
    start_h, end_h = window
    return int(((end_h - start_h) % 24 or 24) * HOUR_MS)


def local_window_ms(
    rng: random.Random, after_ms: float, offset_min: int, window: tuple[float, float]
) -> float:
    """A uniform moment of the first local-time window (hours, may wrap midnight) at or after after_ms."""
    where = rng.random()
    offset_ms = offset_min * MINUTE_MS
    local_ms = after_ms + offset_ms
    day = local_ms // DAY_MS
    length = window_length_ms(window)
    # Start from yesterday's window: one that wraps midnight may still be under way.
    for d in range(-1, 3):
        moment = (day + d) * DAY_MS + window[0] * HOUR_MS + where * length
        if moment >= local_ms:
            return moment - offset_ms
    raise AssertionError("unreachable: a window recurs every day")


def next_local_hour_ms(after_ms: float, offset_min: int, hour: float) -> float:
    """The first moment at or after after_ms when the local clock shows `hour`."""
    offset_ms = offset_min * MINUTE_MS
    local_ms = after_ms + offset_ms
    moment = (local_ms // DAY_MS) * DAY_MS + hour * HOUR_MS
    if moment < local_ms:
        moment += DAY_MS
    return moment - offset_ms


def local_hour(ts_ms: int, offset_min: int) -> float:
    """The hour of the day (0 <= h < 24) at ts_ms in a zone offset_min from UTC."""
    return ((ts_ms + offset_min * MINUTE_MS) % DAY_MS) / HOUR_MS


def next_night_ms(rng: random.Random, start_ms: float, night_pref: float, offset_min: int) -> float:
    """Keep a start outside the local night, or with probability night_pref move it into the next one."""
    moves, where = rng.random() < night_pref, rng.random()  # always two draws: stable streams
    offset_ms = offset_min * MINUTE_MS
    local_ms = start_ms + offset_ms
    hour = int(local_ms // HOUR_MS) % 24
    if NIGHT_START_HOUR <= hour < NIGHT_END_HOUR or not moves:
        return start_ms
    next_midnight = (local_ms // DAY_MS + 1) * DAY_MS
    night_ms = (NIGHT_END_HOUR - NIGHT_START_HOUR) * HOUR_MS
    return next_midnight + NIGHT_START_HOUR * HOUR_MS + where * night_ms - offset_ms
