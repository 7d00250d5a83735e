"""The simulated shop: Faker-made products per category, games to bet on, browser and bot user agents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from faker import Faker

# Category codes in the REES46 style, with a typical price (currency units).
CATEGORY_PRICES: Mapping[str, float] = {
    "electronics.smartphone": 350.0,
    "electronics.audio.headphone": 80.0,
    "electronics.video.tv": 600.0,
    "computers.notebook": 900.0,
    "computers.peripherals.mouse": 25.0,
    "appliances.kitchen.kettle": 40.0,
    "appliances.environment.vacuum": 180.0,
    "apparel.shoes": 70.0,
    "apparel.jacket": 110.0,
    "furniture.living_room.sofa": 550.0,
    "sport.bicycle": 420.0,
    "kids.toys": 30.0,
    "beauty.fragrance": 60.0,
    "books.fiction": 15.0,
    "auto.accessories.tires": 95.0,
    "construction.tools.drill": 120.0,
}
# Real crawler and HTTP-library agents; `{a}`/`{b}` become version numbers.
_BOT_AGENT_TEMPLATES = (
    "python-requests/2.{a}.{b}",
    "Scrapy/2.{a}.{b} (+https://scrapy.org)",
    "curl/8.{a}.{b}",
    "Go-http-client/1.1",
    "Wget/1.2{a}.{b}",
    "okhttp/4.{a}.{b}",
    "aiohttp/3.{a}.{b}",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/1{a}{b}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
    "PhantomJS/2.1.{a} Safari/538.1",
    "Python-urllib/3.1{a}",
)
_MAX_AGENT_CHARS = 200  # well under the worker's field limit, as real browsers are


@dataclass(frozen=True, slots=True)
class Product:
    """One article for sale."""

    name: str
    category: str
    price: float


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the simulation picks content from, built once per run from the seed."""

    categories: tuple[str, ...]
    products: Mapping[str, tuple[Product, ...]]
    browser_agents: tuple[str, ...]
    bot_agents: tuple[str, ...]  # tools and crawlers, some disguised as a browser
    tool_agents: tuple[str, ...]  # tools and crawlers that name themselves
    markets: Mapping[str, tuple[str, ...]]  # games or fixtures per betting market

    @property
    def market_names(self) -> tuple[str, ...]:
        """The betting markets, in a fixed order."""
        return tuple(self.markets)


def build_catalogue(seed: int, *, products_per_category: int = 40, agents: int = 300) -> Catalogue:
    """Make the shop's products and agent pools deterministically from the seed."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = fake.random
    products: dict[str, tuple[Product, ...]] = {}
    for category, typical in CATEGORY_PRICES.items():
        items = []
        for _ in range(products_per_category):
            brand = fake.last_name()
            model = fake.bothify("??-###", letters="ABCDEFGHJKLMNPRSTUVWXZ")
            price = round(max(0.99, typical * rng.lognormvariate(0.0, 0.45)), 2)
            items.append(Product(f"{brand} {model}", category, price))
        products[category] = tuple(items)
    browsers: list[str] = []
    while len(browsers) < agents:
        agent = fake.user_agent()
        if len(agent) <= _MAX_AGENT_CHARS:
            browsers.append(agent)
    tools = [
        template.format(a=rng.randint(0, 9), b=rng.randint(0, 9))
        for template in _BOT_AGENT_TEMPLATES
        for _ in range(3)
    ]
    # Some scrapers hide behind an ordinary browser string.
    bots = tools + [fake.chrome() for _ in range(len(tools) // 3)]
    # Games and fixtures of the betting side, under category codes like the shop's.
    markets = {
        "betting.casino.slots": tuple(f"{fake.color_name()} {fake.word().title()}" for _ in range(12)),
        "betting.casino.roulette": tuple(f"{fake.last_name()} Roulette {n}" for n in range(1, 7)),
        "betting.sports.football": tuple(f"{fake.city()} v {fake.city()}" for _ in range(20)),
        "betting.sports.tennis": tuple(f"{fake.last_name()} v {fake.last_name()}" for _ in range(20)),
        "betting.sports.racing": tuple(f"{fake.city()} {fake.time('%H:%M')}" for _ in range(12)),
    }
    return Catalogue(
        categories=tuple(CATEGORY_PRICES),
        products=products,
        browser_agents=tuple(browsers),
        bot_agents=tuple(a for a in bots if len(a) <= _MAX_AGENT_CHARS),
        tool_agents=tuple(a for a in tools if len(a) <= _MAX_AGENT_CHARS),
        markets=markets,
    )
