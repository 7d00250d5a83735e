"""The simulated shop: Faker-made products per category, browser and scraper user agents."""

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
    bot_agents: tuple[str, ...]


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
    bots = [
        template.format(a=rng.randint(0, 9), b=rng.randint(0, 9))
        for template in _BOT_AGENT_TEMPLATES
        for _ in range(3)
    ]
    # Some scrapers hide behind an ordinary browser string.
    bots += [fake.chrome() for _ in range(len(bots) // 3)]
    return Catalogue(
        categories=tuple(CATEGORY_PRICES),
        products=products,
        browser_agents=tuple(browsers),
        bot_agents=tuple(a for a in bots if len(a) <= _MAX_AGENT_CHARS),
    )
