"""The independent traffic generator keeps its own promises: wire format, labels, determinism, timing.

These tests read only the generator's output; they say nothing about how the detector scores it.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from config.settings import Settings
from contract.wire import Action, RawEvent
from workers.validation import Limits, parse_batch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "independent_traffic.py"
END = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USERS = 600  # enough for every behaviour to get at least five users


def load_generator() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("independent_traffic", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = load_generator()


@dataclass(frozen=True)
class Event:
    """One parsed line: its instant, local time and wire fields."""

    at: datetime  # aware, in the offset the line carries
    action: str
    session_id: str | None
    amount: float | None
    user_agent: str | None

    @property
    def ms(self) -> int:
        """Epoch milliseconds, exact: the wire carries milliseconds."""
        return (self.at - EPOCH) // timedelta(milliseconds=1)

    @property
    def ts(self) -> float:
        return self.ms / 1000


@dataclass(frozen=True)
class Run:
    """A generated run read back: raw lines, labels and each user's events in order."""

    lines: list[str]
    labels: dict[str, tuple[str, str]]  # user_id -> (persona, behaviour)
    events: dict[str, list[Event]]

    def users_of(self, behaviour: str) -> list[list[Event]]:
        return [self.events[u] for u, (_, b) in self.labels.items() if b == behaviour and u in self.events]


def generate(out: Path, *, seed: int, users: int) -> None:
    assert (
        gen.main(["--seed", str(seed), "--users", str(users), "--out", str(out), "--end", END.isoformat()])
        == 0
    )


def read_run(out: Path) -> Run:
    lines = (out / "events.ndjson").read_text(encoding="utf-8").splitlines()
    with (out / "labels.csv").open(encoding="utf-8", newline="") as handle:
        labels = {row["user_id"]: (row["persona"], row["behaviour"]) for row in csv.DictReader(handle)}
    events: dict[str, list[Event]] = defaultdict(list)
    for line in lines:
        raw = json.loads(line)
        at = datetime.fromisoformat(raw["timestamp"])
        events[raw["user_id"]].append(
            Event(at, raw["action"], raw.get("session_id"), raw.get("amount"), raw.get("user_agent"))
        )
    return Run(lines, labels, dict(events))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("independent")
    generate(out, seed=7, users=USERS)
    return read_run(out)


# --- helpers over one user's events ------------------------------------------------------------


def gaps(events: list[Event]) -> list[float]:
    """Seconds between consecutive events of one user, to the millisecond the wire carries."""
    return [between(a, b) for a, b in itertools.pairwise(events)]


def between(earlier: Event, later: Event) -> float:
    """Seconds from one event to another, exact to the millisecond."""
    return (later.ms - earlier.ms) / 1000


def sessions(events: list[Event]) -> list[list[Event]]:
    """Consecutive events sharing a session id (a None id is its own run)."""
    grouped: list[list[Event]] = []
    for event in events:
        if grouped and grouped[-1][-1].session_id == event.session_id and event.session_id is not None:
            grouped[-1].append(event)
        else:
            grouped.append([event])
    return grouped


def local_hour(event: Event) -> float:
    return event.at.hour + event.at.minute / 60 + event.at.second / 3600


def coefficient_of_variation(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def purchases(events: list[Event]) -> list[Event]:
    return [e for e in events if e.action == "purchase"]


def bursts(events: list[Event], *, pause_s: float) -> Iterator[list[Event]]:
    """Runs of events with no gap longer than pause_s."""
    current: list[Event] = []
    for event in events:
        if current and between(current[-1], event) > pause_s:
            yield current
            current = []
        current.append(event)
    if current:
        yield current


# --- the whole file ----------------------------------------------------------------------------


def test_every_line_is_a_valid_wire_event_in_time_order_inside_the_window(run: Run) -> None:
    limits = Limits.from_settings(Settings(), now_ms=int(END.timestamp() * 1000))
    parsed = parse_batch("\n".join(run.lines), limits)
    assert parsed.rejections == []
    assert len(parsed.events) == len(run.lines)
    ids = [RawEvent.model_validate_json(line).event_id for line in run.lines]
    assert len(set(ids)) == len(ids)
    instants = [e.ts_ms for e in parsed.events]
    assert instants == sorted(instants)
    start = END - timedelta(days=gen.WINDOW_DAYS)
    assert start.timestamp() * 1000 <= instants[0] and instants[-1] < END.timestamp() * 1000
    assert {e.action for e in parsed.events} <= {a.value for a in Action}
    assert all((e.amount_cents is not None) == (e.action == "purchase") for e in parsed.events)


def test_each_timestamp_carries_an_offset_and_users_span_many_zones(run: Run) -> None:
    offsets = Counter(json.loads(line)["timestamp"][-6:] for line in run.lines)
    assert all(o[0] in "+-" and o[3] == ":" for o in offsets)
    assert len(offsets) >= 12
    assert {"+05:30", "+05:45", "-05:00", "+08:00"} <= set(offsets)


def test_labels_cover_every_user_once_with_the_documented_mix(run: Run) -> None:
    assert set(run.events) <= set(run.labels)
    assert len(run.labels) == USERS
    personas = Counter(p for p, _ in run.labels.values())
    for persona, share in gen.PERSONA_SHARES:
        assert abs(personas[persona] - share * USERS) <= 1
    behaviours = Counter(b for _, b in run.labels.values())
    assert set(behaviours) == set(gen.BEHAVIOUR_BY_NAME)
    assert all(gen.BEHAVIOUR_BY_NAME[b].persona == p for p, b in run.labels.values())
    assert min(behaviours.values()) >= 5
    assert all(len(run.users_of(b)) == n for b, n in behaviours.items())  # every user has events


def test_labels_are_not_in_the_events(run: Run) -> None:
    text = "\n".join(run.lines)
    for behaviour in gen.BEHAVIOURS:
        assert behaviour.name not in text
    for persona in ("impulsive", '"bot"', "normal"):
        assert persona not in text


def test_same_seed_gives_the_same_files_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, seed=seed, users=60)
    for file in ("events.ndjson", "labels.csv", "manifest.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "events.ndjson").read_bytes() != (tmp_path / "c" / "events.ndjson").read_bytes()


def test_apportion_splits_exactly() -> None:
    assert gen.apportion(10, [0.8, 0.12, 0.08]) == [8, 1, 1]
    assert sum(gen.apportion(2_503, [b.share for b in gen.BEHAVIOURS])) == 2_503


# --- each behaviour's documented timing --------------------------------------------------------

Check = Callable[[list[list[Event]]], None]
CHECKS: dict[str, Check] = {}


def documents(name: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        CHECKS[name] = check
        return check

    return register


@documents("casual_shopper")
def _casual_shopper(users: list[list[Event]]) -> None:
    within = [g for u in users for g in gaps(u) if g < 1800]
    assert min(within) >= 1.0  # no event within a second of the last: KLM pointing + click
    assert statistics.median(within) >= 5.0
    assert sum(g < 2 for g in within) / len(within) <= 0.1


@documents("quick_pager")
def _quick_pager(users: list[list[Event]]) -> None:
    within = [g for u in users for g in gaps(u) if g < 1800]
    assert min(within) >= 0.35
    assert sum(g < 2 for g in within) / len(within) >= 0.4
    for user in users:
        for visit in sessions(user):
            views = [e for e in visit if e.action == "view"]
            assert len(views) >= 4  # a run of at least three list pages and a closer look


@documents("heavy_buyer")
def _heavy_buyer(users: list[list[Event]]) -> None:
    for user in users:
        assert len(purchases(user)) >= 4
        for visit in sessions(user):
            assert 6.0 <= local_hour(visit[0]) < 20.0
            for before, event in itertools.pairwise(visit):
                if event.action == "purchase":
                    assert before.action == "add_to_cart" and between(before, event) >= 5.0


@documents("evening_shopper_utc_minus5")
def _evening_shopper(users: list[list[Event]]) -> None:
    for user in users:
        assert {e.at.utcoffset() for e in user} == {timedelta(hours=-5)}
        for visit in sessions(user):
            assert 19.0 <= local_hour(visit[0]) <= 23.5
            assert visit[0].at.astimezone(UTC).hour < 5  # the UTC night


@documents("night_owl_utc_plus8")
def _night_owl(users: list[list[Event]]) -> None:
    for user in users:
        assert {e.at.utcoffset() for e in user} == {timedelta(hours=8)}
        for visit in sessions(user):
            hour = local_hour(visit[0])
            assert hour >= 23.0 or hour <= 3.5


@documents("casual_bettor")
def _casual_bettor(users: list[list[Event]]) -> None:
    for user in users:
        stakes = [e.amount for e in purchases(user) if e.amount is not None]
        assert stakes and max(stakes) <= 4 * statistics.median(stakes)
        for visit in sessions(user):
            assert len(purchases(visit)) <= 12
        for before, event in itertools.pairwise(user):
            if event.action == "purchase":
                assert between(before, event) >= 1.5


@documents("inplay_bettor")
def _inplay_bettor(users: list[list[Event]]) -> None:
    for user in users:
        for match in sessions(user):
            assert 90 * 60 <= between(match[0], match[-1]) <= 125 * 60
            bets = purchases(match)
            assert all(between(a, b) >= 10 for a, b in itertools.pairwise(bets))
        stakes = [e.amount for e in purchases(user) if e.amount is not None]
        if stakes:
            assert max(stakes) <= 3 * statistics.median(stakes)


@documents("impulse_buyer")
def _impulse_buyer(users: list[list[Event]]) -> None:
    for user in users:
        episodes = [v for v in sessions(user) if len(purchases(v)) >= 3]
        assert episodes
        for episode in episodes:
            bought = purchases(episode)
            assert between(bought[0], bought[2]) <= 300  # three buys within five minutes
            assert statistics.median(gaps(episode)) < 8.0  # typically 2-4 s; the slowest tail above
            hour = local_hour(episode[0])
            assert hour >= 19.0 or hour <= 1.0


def chasing_sessions(user: list[Event]) -> list[list[Event]]:
    """Sessions of 30 bets or more: a recreational visit has at most 12."""
    return [v for v in sessions(user) if len(purchases(v)) >= 30]


@documents("stake_chaser")
def _stake_chaser(users: list[list[Event]]) -> None:
    rising = 0
    chases = [c for u in users for c in chasing_sessions(u)]
    assert all(len(chasing_sessions(u)) >= 2 for u in users)
    for chase in chases:
        assert between(chase[0], chase[-1]) >= 10 * 60
        hour = local_hour(chase[0])
        assert hour >= 21.0 or hour <= 2.0
        bets = purchases(chase)
        assert 2.0 <= statistics.median(gaps(bets)) <= 10.0
        stakes = [b.amount or 0.0 for b in bets]
        rising += max(stakes) >= 2 * stakes[0]
    assert rising >= 0.9 * len(chases)


@documents("night_session_gambler")
def _night_session_gambler(users: list[list[Event]]) -> None:
    for user in users:
        nights: Counter[object] = Counter()
        for visit in sessions(user):
            assert visit[0].action == "login"
            start = visit[0].at
            hour = local_hour(visit[0])
            assert hour >= 22.0 or hour < 5.5
            nights[(start - timedelta(hours=12)).date()] += 1  # a night belongs to its evening
        assert sum(n >= 3 for n in nights.values()) >= 2


@documents("binge_shopper")
def _binge_shopper(users: list[list[Event]]) -> None:
    rising = 0
    for user in users:
        binges = [v for v in sessions(user) if len(purchases(v)) >= 5]
        assert binges
        for before, event in itertools.pairwise(user):
            if event.action == "purchase":
                assert between(before, event) >= 3.0  # loss of control at human speed
        first, last = binges[0], binges[-1]
        weeks_apart = between(first[0], last[0]) / (7 * 86400)
        mean = statistics.fmean
        rising += weeks_apart < 1 or mean(e.amount or 0 for e in purchases(last)) > mean(
            e.amount or 0 for e in purchases(first)
        )
    assert rising >= 0.8 * len(users)


@documents("relapsing_gambler")
def _relapsing_gambler(users: list[list[Event]]) -> None:
    end = END.timestamp()
    for user in users:
        chases = chasing_sessions(user)
        assert 1 <= len(chases) <= 3
        relapse = chases[0][0].ts
        assert relapse >= end - 5 * 86400
        calm = [v for v in sessions(user) if v[0].ts < relapse]
        assert all(v[-1].ts <= relapse - 8 * 86400 for v in calm)
        assert len({v[0].at.date() for v in calm}) >= 4


@documents("fast_random_scraper")
def _fast_random_scraper(users: list[list[Event]]) -> None:
    for user in users:
        assert {e.action for e in user} <= {"view", "search"}
        within = [g for g in gaps(user) if g < 600]
        assert statistics.fmean(within) < 1.0
        assert 0.7 <= coefficient_of_variation(within) <= 1.4  # Poisson-like, not a clock


@documents("slow_regular_crawler")
def _slow_regular_crawler(users: list[list[Event]]) -> None:
    for user in users:
        assert {e.action for e in user} == {"view"}
        assert len({e.session_id for e in user}) == 1
        assert between(user[0], user[-1]) >= 23.9 * 3600
        assert coefficient_of_variation(gaps(user)) < 0.05
        assert max(gaps(user)) < 300


@documents("human_mimic_monitor")
def _human_mimic_monitor(users: list[list[Event]]) -> None:
    for user in users:
        assert between(user[0], user[-1]) >= 24 * 3600
        assert max(gaps(user)) <= 600.001  # never a rest longer than ten minutes
        assert statistics.median(gaps(user)) >= 20.0  # yet human think times
        assert sum(e.action == "view" for e in user) >= 0.9 * len(user)
        assert {e.at.astimezone(UTC).hour for e in user} == set(range(24))


@documents("declared_tool_client")
def _declared_tool_client(users: list[list[Event]]) -> None:
    for user in users:
        assert {e.user_agent for e in user} <= set(gen.AUTOMATION_AGENTS)
        assert not purchases(user)


@documents("checkout_sniper")
def _checkout_sniper(users: list[list[Event]]) -> None:
    for user in users:
        assert purchases(user)
        for before, event in itertools.pairwise(user):
            if event.action == "purchase":
                assert before.action == "add_to_cart" and between(before, event) < 1.0
        for visit in sessions(user):
            first_add = next(i for i, e in enumerate(visit) if e.action == "add_to_cart")
            polls = gaps([e for e in visit[:first_add] if e.action == "view"][:-1])  # until the drop
            assert coefficient_of_variation(polls) < 0.1


@documents("credential_cracker")
def _credential_cracker(users: list[list[Event]]) -> None:
    for user in users:
        assert sum(e.action == "login" for e in user) >= 0.9 * len(user)
        for burst in bursts(user, pause_s=600):
            assert max(gaps(burst), default=0.0) <= 2.501


@documents("betting_bot")
def _betting_bot(users: list[list[Event]]) -> None:
    for user in users:
        for match in sessions(user):
            bets = purchases(match)
            assert len(bets) >= 100
            assert coefficient_of_variation(gaps(bets)) < 0.05


def test_every_behaviour_has_its_timing_check() -> None:
    assert set(CHECKS) == set(gen.BEHAVIOUR_BY_NAME)


@pytest.mark.parametrize("behaviour", sorted(gen.BEHAVIOUR_BY_NAME))
def test_each_behaviour_keeps_its_documented_timing(run: Run, behaviour: str) -> None:
    users = run.users_of(behaviour)
    assert users
    CHECKS[behaviour](users)
