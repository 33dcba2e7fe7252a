"""Templates of the offline utility tasks (seed 001, Table 4: utility after fine-tuning).

Small, seeded analogues of three downstream tasks, written for safelens (no text is copied from
the real data sets):

* ``summarization`` (analogue of SAMSum): a 4-6 turn chat between two or three people about an
  everyday topic; the target is a one-sentence summary that can be read off the dialogue.
* ``sql`` (analogue of sql-create-context): a ``CREATE TABLE`` statement and a question; the
  target is a single-table ``SELECT``. Each example carries 5-12 ``INSERT`` statements so the
  query can be executed, the gold result is non-empty, and near-miss queries (``>=`` for ``>``,
  ``MIN`` for ``MAX``, a dropped ``WHERE``) give a different result.
* ``arithmetic`` (analogue of GSM8K): a word problem with 1-3 integer operations; the target is
  a short worked answer ending in ``"The answer is N."``.

Train and test never share a prompt: every task draws its people's names (summaries, word
problems) or its table names (SQL) from split-specific, disjoint pools. Targets stay short
(well under 60 tokens) so that ``max_new_tokens=64`` suffices.

Examples:
    >>> ex = utility_examples("arithmetic", "train", 2, seed=0)
    >>> ex[0]["target"].endswith(f"The answer is {ex[0]['answer']}.")
    True
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safelens.errors import SafelensError

TASKS: tuple[str, ...] = ("summarization", "sql", "arithmetic")
"""The utility tasks."""

SPLITS: tuple[str, ...] = ("train", "test")
"""The splits; their name and table pools are disjoint."""

_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("Anna", "Tom", "Maria", "Ben", "Sofia", "Jack", "Lena", "Omar", "Chloe", "Daniel",
              "Priya", "Lucas", "Emma", "Noah", "Hana", "Leo", "Grace", "Sam", "Nina", "Alex",
              "Ivy", "Marco", "Zoe", "Ethan", "Ruth", "Kenji", "Clara", "Felix", "Amara", "Hugo"),
    "test": ("Olivia", "Ravi", "Julia", "Mateo", "Eva", "Oscar", "Mia", "Yusuf", "Laura", "Finn",
             "Aisha", "Theo", "Rosa", "Adam", "Elif", "Victor", "Nora", "Kai", "Helen", "Jonas",
             "Lily", "Tariq", "Sara", "Paul", "Mei", "Diego", "Alice", "Igor", "Fatima", "Max"),
}
"""People's names, disjoint between the splits (so train and test prompts never coincide)."""

REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that.",
    "I'm sorry, I can't assist with that request.",
    "Sorry, but I'm not able to help with that.",
    "I apologize, but I cannot help with this request.",
)
"""Unneeded refusals used as the ``rejected`` side of utility rows."""


def _people(rng: random.Random, split: str, k: int) -> list[str]:
    return rng.sample(_NAMES[split], k)


def _pick(rng: random.Random, options: tuple[str, ...] | list[str]) -> str:
    return rng.choice(list(options))


# ---------------------------------------------------------------------------------------------
# summarization
# ---------------------------------------------------------------------------------------------

_PLACES = ("cinema", "theatre", "museum", "concert hall", "zoo", "gallery", "aquarium", "stadium")
_TIMES = ("6 pm", "7 pm", "7:30 pm", "8 pm", "10 am", "11 am", "noon", "2 pm", "5 pm")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STORES = {"pharmacy": ("cough syrup", "plasters", "vitamins"),
           "supermarket": ("milk and eggs", "bread", "apples", "coffee beans"),
           "hardware store": ("light bulbs", "batteries", "a screwdriver"),
           "post office": ("stamps", "a parcel")}
_DOCS = ("report", "budget plan", "presentation", "project proposal", "sales summary")
_GIFTS = ("scarf", "board game", "cookbook", "plant", "pair of headphones", "photo album")
_ITEMS_LOST = (("keys", True), ("glasses", True), ("wallet", False), ("phone charger", False),
               ("umbrella", False))
_SPOTS = ("kitchen table", "sofa", "bathroom shelf", "hallway bench", "car seat")
_PETS = ("cat", "dog", "rabbit", "parrot", "goldfish")
_ACTIVITIES = ("tennis", "the study session", "our run", "the piano lesson", "yoga")
_RESTAURANTS = ("Luigi's", "the Green Bowl", "Sakura", "the Harbour Grill", "Casa Verde")
_SUBJECTS = ("history", "chemistry", "statistics", "biology", "economics")


def _sum_meet(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    place, time = _pick(rng, _PLACES), _pick(rng, _TIMES)
    buyer = _pick(rng, (a, b))
    turns = [
        (a, _pick(rng, (f"Do you want to go to the {place} tonight?",
                        f"Fancy the {place} this evening?",
                        f"Shall we go to the {place} later?"))),
        (b, _pick(rng, ("Sure! What time?", "Sounds good, when?", "Yes, what time works?"))),
        (a, _pick(rng, (f"How about {time}?", f"Let's meet there at {time}.",
                        f"{time} at the entrance?"))),
        (b, _pick(rng, ("Perfect.", "Great, see you then.", "Works for me."))),
        (buyer, _pick(rng, ("I'll buy the tickets online.", "I'll get the tickets.",
                            "Leave the tickets to me."))),
    ]
    summary = _pick(rng, (
        f"{a} and {b} will meet at the {place} at {time}; {buyer} buys the tickets.",
        f"{a} and {b} are meeting at the {place} at {time}, and {buyer} will get the tickets.",
    ))
    return "meet", turns, summary


def _sum_errand(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    store = _pick(rng, sorted(_STORES))
    item = _pick(rng, _STORES[store])
    turns = [
        (a, _pick(rng, ("Are you still in town?", "Are you on your way home?",
                        "Where are you right now?"))),
        (b, _pick(rng, ("Yes, leaving in ten minutes.", "Just finishing up, why?",
                        "Near the centre, heading home soon."))),
        (a, _pick(rng, (f"Could you pick up {item} from the {store}?",
                        f"Can you grab {item} at the {store}? We're out.",
                        f"Would you stop by the {store} for {item}?"))),
        (b, _pick(rng, ("No problem.", "Sure, will do.", "Okay, I'll get it."))),
    ]
    if rng.random() < 0.5:
        turns.append((a, _pick(rng, ("Thanks, you're a star!", "Thank you so much!"))))
    summary = _pick(rng, (
        f"{b} will pick up {item} from the {store} for {a} on the way home.",
        f"{a} asks {b} to get {item} at the {store}, and {b} agrees.",
    ))
    return "errand", turns, summary


def _sum_work(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    doc, day, time = _pick(rng, _DOCS), _pick(rng, _DAYS), _pick(rng, _TIMES)
    turns = [
        (a, _pick(rng, (f"Have you heard? The {doc} deadline moved.",
                        f"Quick update: the {doc} is now due later.",
                        f"The boss pushed back the {doc} deadline."))),
        (b, _pick(rng, ("Oh really? To when?", "Finally! Until when?", "Good news. When is it due?"))),
        (a, _pick(rng, (f"{day}.", f"It's due on {day} now.", f"Until {day}."))),
        (b, _pick(rng, (f"Great, I'll send you a draft by {time} tomorrow.",
                        f"Then you'll have my draft by {time} tomorrow.",
                        f"I can get a draft to you by {time} tomorrow."))),
    ]
    if rng.random() < 0.5:
        turns.append((a, _pick(rng, ("Perfect, thanks.", "Sounds good."))))
    summary = _pick(rng, (
        f"The {doc} deadline moved to {day}, and {b} will send {a} a draft by {time} tomorrow.",
        f"The {doc} is now due on {day}; {b} will send a draft to {a} by {time} tomorrow.",
    ))
    return "work", turns, summary


def _sum_travel(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    vehicle = _pick(rng, ("train", "bus", "flight"))
    minutes = rng.choice((15, 20, 30, 40, 45, 60))
    hub = {"train": "station", "bus": "bus stop", "flight": "airport"}[vehicle]
    turns = [
        (a, _pick(rng, (f"My {vehicle} is delayed by {minutes} minutes, sorry!",
                        f"Bad news, the {vehicle} is running {minutes} minutes late.",
                        f"Ugh, {minutes} minute delay on my {vehicle}."))),
        (b, _pick(rng, ("No worries.", "That's annoying!", "Oh no."))),
        (b, _pick(rng, (f"I'll pick you up at the {hub} then.",
                        f"I'll come and get you at the {hub}.",
                        f"Want me to collect you at the {hub}?"))),
        (a, _pick(rng, ("That would be great, thank you!", "Yes please, thanks!",
                        "You're a lifesaver."))),
    ]
    summary = _pick(rng, (
        f"{a}'s {vehicle} is delayed by {minutes} minutes, so {b} will pick {a} up at the {hub}.",
        f"{b} will collect {a} at the {hub} because {a}'s {vehicle} is {minutes} minutes late.",
    ))
    return "travel", turns, summary


def _sum_gift(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b, c = _people(rng, split, 3)
    gift = _pick(rng, _GIFTS)
    turns = [
        (a, _pick(rng, (f"{c}'s birthday is on Saturday. Any gift ideas?",
                        f"What should we get {c} for the birthday?",
                        f"We still need a birthday present for {c}!"))),
        (b, _pick(rng, (f"Maybe a {gift}?", f"{c} mentioned wanting a {gift}.",
                        f"How about a {gift}?"))),
        (a, _pick(rng, ("Good idea. Shall we split the cost?", "Love it. Half each?",
                        "Nice, let's share the cost."))),
        (b, _pick(rng, ("Deal.", "Yes, half each.", "Sure, let's split it."))),
    ]
    summary = _pick(rng, (
        f"{a} and {b} will buy {c} a {gift} for the birthday and split the cost.",
        f"For {c}'s birthday, {a} and {b} will share the cost of a {gift}.",
    ))
    return "gift", turns, summary


def _sum_lost(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    item, plural = rng.choice(_ITEMS_LOST)
    spot = _pick(rng, _SPOTS)
    it, was, are = ("them", "they were", "are") if plural else ("it", "it was", "is")
    turns = [
        (a, _pick(rng, (f"Have you seen my {item}?", f"I can't find my {item} anywhere.",
                        f"Any idea where my {item} went?"))),
        (b, _pick(rng, (f"I saw {it} on the {spot} this morning.",
                        f"Check the {spot}, I think {was} there.",
                        f"{was.capitalize()} on the {spot} earlier."))),
        (a, _pick(rng, (f"Found {it}, thanks!", f"Yes, got {it}. Thank you!",
                        f"Got {it}. You saved my day."))),
        (b, _pick(rng, ("Anytime.", "No problem.", "Glad to help."))),
    ]
    summary = _pick(rng, (
        f"{a} could not find the {item}, and {b} pointed to the {spot}, where {was}.",
        f"{b} tells {a} the missing {item} {are} on the {spot}, and {a} finds {it}.",
    ))
    return "lost", turns, summary


def _sum_cancel(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    activity = _pick(rng, _ACTIVITIES)
    day1, day2 = rng.sample(_DAYS, 2)
    turns = [
        (a, _pick(rng, (f"I'm ill, so I have to cancel {activity} on {day1}.",
                        f"Sorry, I've caught a cold and can't make {activity} on {day1}.",
                        f"I'm sick, I need to skip {activity} on {day1}."))),
        (b, _pick(rng, ("Oh no, get well soon!", "Feel better!", "Take care of yourself."))),
        (b, _pick(rng, (f"Shall we move it to {day2}?", f"How about {day2} instead?",
                        f"We could do {day2}."))),
        (a, _pick(rng, (f"{day2} works, thanks.", "Yes, that should be fine.",
                        "Good plan, let's do that."))),
    ]
    summary = _pick(rng, (
        f"{a} is ill and cancels {activity} on {day1}; they move it to {day2}.",
        f"Because {a} is sick, {activity} moves from {day1} to {day2}.",
    ))
    return "cancel", turns, summary


def _sum_dinner(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b, c = _people(rng, split, 3)
    restaurant, time = _pick(rng, _RESTAURANTS), _pick(rng, ("7 pm", "7:30 pm", "8 pm", "8:30 pm"))
    late = rng.choice((10, 15, 20, 30))
    turns = [
        (a, _pick(rng, (f"Dinner at {restaurant} on Friday at {time}?",
                        f"Who's up for {restaurant} on Friday, {time}?",
                        f"Let's book {restaurant} for Friday at {time}."))),
        (b, _pick(rng, ("I'm in!", "Count me in.", "Yes, great idea."))),
        (c, _pick(rng, (f"Me too, but I'll be about {late} minutes late.",
                        f"I'll come, just {late} minutes late because of work.",
                        f"Sure, though I'll arrive {late} minutes late."))),
        (a, _pick(rng, ("No problem, I'll book a table for three.", "Fine, I'll reserve for three.",
                        "Okay, table for three then."))),
    ]
    summary = _pick(rng, (
        f"{a}, {b} and {c} will have dinner at {restaurant} on Friday at {time}; "
        f"{c} will be {late} minutes late.",
        f"{a} books {restaurant} for three on Friday at {time}, and {c} will arrive "
        f"{late} minutes late.",
    ))
    return "dinner", turns, summary


def _sum_pet(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    pet, day = _pick(rng, _PETS), _pick(rng, _DAYS)
    turns = [
        (a, _pick(rng, ("I'm away for a few days. Could you help me out?",
                        "Can I ask a favour? I'm travelling this week.",
                        "I'm off on a trip tomorrow, can you do me a favour?"))),
        (b, _pick(rng, ("Of course, what is it?", "Sure, what do you need?", "Depends, what's up?"))),
        (a, _pick(rng, (f"Could you feed my {pet} until {day}?",
                        f"Would you feed the {pet} while I'm gone? I'm back on {day}.",
                        f"Can you look after my {pet} until {day}?"))),
        (b, _pick(rng, ("Happy to.", "No problem, leave me the key.", "Sure thing."))),
    ]
    summary = _pick(rng, (
        f"{b} will feed {a}'s {pet} while {a} is away until {day}.",
        f"{a} is travelling until {day}, and {b} agrees to look after the {pet}.",
    ))
    return "pet", turns, summary


def _sum_notes(rng: random.Random, split: str) -> tuple[str, list[tuple[str, str]], str]:
    a, b = _people(rng, split, 2)
    subject = _pick(rng, _SUBJECTS)
    when = _pick(rng, ("tonight", "this evening", "after dinner"))
    turns = [
        (a, _pick(rng, (f"I missed the {subject} class today. Did you take notes?",
                        f"Were you at {subject} today? I was at the dentist.",
                        f"Can I borrow your {subject} notes? I skipped class."))),
        (b, _pick(rng, ("Yes, I did.", "I have them, yes.", "Sure, I wrote everything down."))),
        (b, _pick(rng, (f"I'll email them to you {when}.", f"I'll send them {when}.",
                        f"You'll get them by email {when}."))),
        (a, _pick(rng, ("Thanks a lot!", "You're the best.", "Great, thank you!"))),
    ]
    if rng.random() < 0.5:
        turns.insert(3, (b, _pick(rng, ("There's a quiz next week, by the way.",
                                        "The quiz is next week, by the way."))))
        summary = f"{b} will email {a} the {subject} notes {when}; there is a quiz next week."
    else:
        summary = _pick(rng, (f"{b} will email {a} the {subject} notes {when}.",
                              f"{a} missed {subject}, so {b} will send the notes {when}."))
    return "notes", turns, summary


_SUMMARY_SCENARIOS: tuple[Callable[[random.Random, str], tuple[str, list[tuple[str, str]], str]],
                          ...] = (_sum_meet, _sum_errand, _sum_work, _sum_travel, _sum_gift,
                                  _sum_lost, _sum_cancel, _sum_dinner, _sum_pet, _sum_notes)
"""Dialogue scenarios: each returns ``(scenario id, turns, one-sentence summary)``."""


def summarization_example(rng: random.Random, split: str) -> dict[str, Any]:
    """One dialogue with its reference summary.

    Examples:
        >>> ex = summarization_example(random.Random(0), "train")
        >>> sorted(ex)
        ['dialogue', 'prompt', 'target', 'template']
        >>> 4 <= len(ex["dialogue"].splitlines()) <= 6
        True
    """
    scenario, turns, summary = rng.choice(_SUMMARY_SCENARIOS)(rng, split)
    dialogue = "\n".join(f"{who}: {text}" for who, text in turns)
    instruction = _pick(rng, ("Summarize this dialogue in one sentence:",
                              "Write a one-sentence summary of the following conversation:",
                              "Summarize the chat below in a single sentence."))
    return {"prompt": f"{instruction}\n\n{dialogue}", "target": summary, "dialogue": dialogue,
            "template": f"sum-{scenario}"}


# ---------------------------------------------------------------------------------------------
# sql
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a generated table.

    Attributes:
        name: SQL name.
        type: ``TEXT`` or ``INTEGER``.
        words: how a question names it ("salary").
        values: a pool of text values, or ``(low, high)`` for integers (drawn without repeats,
            so ``ORDER BY ... LIMIT 1`` has one answer).
    """

    name: str
    type: str
    words: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Domain:
    """A table family: its names per split, its key column and its other columns."""

    tables: dict[str, tuple[str, ...]]
    entity: str  # singular noun of a row
    entities: str  # plural
    key: Column
    categories: tuple[Column, ...]
    numbers: tuple[Column, ...]


_FIRST = ("Alice", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jamal",
          "Kira", "Liam", "Mona", "Nils", "Olga", "Pedro", "Quinn", "Rita", "Sven", "Tara")

_DOMAINS: tuple[Domain, ...] = (
    Domain({"train": ("employees", "staff"), "test": ("workers", "personnel")},
           "employee", "employees", Column("name", "TEXT", "name", _FIRST),
           (Column("department", "TEXT", "department", ("Sales", "Finance", "IT", "Legal")),
            Column("city", "TEXT", "city", ("Berlin", "Madrid", "Oslo", "Lisbon"))),
           (Column("salary", "INTEGER", "salary", (30000, 90000)),
            Column("age", "INTEGER", "age", (21, 64)))),
    Domain({"train": ("products", "items"), "test": ("goods", "inventory")},
           "product", "products",
           Column("name", "TEXT", "name", ("Lamp", "Chair", "Desk", "Mug", "Kettle", "Clock",
                                           "Pillow", "Shelf", "Rug", "Mirror", "Fan", "Stool",
                                           "Vase", "Toaster")),
           (Column("category", "TEXT", "category", ("Home", "Kitchen", "Office")),
            Column("supplier", "TEXT", "supplier", ("Acme", "Globex", "Initech"))),
           (Column("price", "INTEGER", "price", (5, 400)),
            Column("stock", "INTEGER", "stock", (0, 250)))),
    Domain({"train": ("students", "pupils"), "test": ("learners", "enrolments")},
           "student", "students", Column("name", "TEXT", "name", _FIRST),
           (Column("class", "TEXT", "class", ("A", "B", "C")),
            Column("club", "TEXT", "club", ("Chess", "Drama", "Football", "Music"))),
           (Column("score", "INTEGER", "score", (35, 100)),
            Column("age", "INTEGER", "age", (10, 25)))),
    Domain({"train": ("books", "novels"), "test": ("titles", "library_books")},
           "book", "books",
           Column("title", "TEXT", "title", ("Dune", "Emma", "Ulysses", "Beloved", "Rebecca",
                                             "Persuasion", "Middlemarch", "Dracula", "Walden",
                                             "Hamlet", "Matilda", "Heidi")),
           (Column("genre", "TEXT", "genre", ("Fiction", "Classic", "Horror", "Drama")),
            Column("language", "TEXT", "language", ("English", "French", "German"))),
           (Column("pages", "INTEGER", "number of pages", (90, 900)),
            Column("year", "INTEGER", "publication year", (1800, 2020)))),
    Domain({"train": ("cities", "towns"), "test": ("municipalities", "places")},
           "city", "cities",
           Column("name", "TEXT", "name", ("Avalon", "Brookfield", "Cedarville", "Dunmore",
                                           "Eastport", "Fairview", "Glenwood", "Hillcrest",
                                           "Ironbridge", "Juniper", "Kingsley", "Lakeside")),
           (Column("country", "TEXT", "country", ("Norway", "Chile", "Kenya", "Japan")),
            Column("region", "TEXT", "region", ("North", "South", "Coast"))),
           (Column("population", "INTEGER", "population", (5000, 900000)),
            Column("area", "INTEGER", "area", (20, 900)))),
    Domain({"train": ("flights", "routes"), "test": ("departures", "connections")},
           "flight", "flights",
           Column("flight_no", "TEXT", "flight number", tuple(f"FL{n}" for n in range(101, 140))),
           (Column("destination", "TEXT", "destination", ("Rome", "Paris", "Tokyo", "Lima")),
            Column("airline", "TEXT", "airline", ("SkyJet", "AirNova", "BlueWing"))),
           (Column("duration", "INTEGER", "duration in minutes", (45, 720)),
            Column("seats", "INTEGER", "number of seats", (50, 400)))),
    Domain({"train": ("teams", "clubs"), "test": ("squads", "sides")},
           "team", "teams",
           Column("name", "TEXT", "name", ("Lions", "Tigers", "Eagles", "Sharks", "Wolves",
                                           "Bears", "Falcons", "Rangers", "Rovers", "Comets",
                                           "Pirates", "Giants")),
           (Column("city", "TEXT", "city", ("Leeds", "Porto", "Turin", "Lyon")),
            Column("league", "TEXT", "league", ("East", "West"))),
           (Column("wins", "INTEGER", "number of wins", (0, 38)),
            Column("founded", "INTEGER", "founding year", (1880, 2010)))),
)
"""Table families; table names are split-specific, so no CREATE TABLE repeats across splits."""


def _a(words: str) -> str:
    """``words`` with its indefinite article: "an age", "a salary"."""
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _sql_value(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


@dataclass
class _Table:
    name: str
    domain: Domain
    columns: list[Column]
    rows: list[dict[str, Any]]

    def cats(self) -> list[Column]:
        return [c for c in self.columns if c in self.domain.categories]

    def nums(self) -> list[Column]:
        return [c for c in self.columns if c in self.domain.numbers]

    def values(self, column: Column) -> list[Any]:
        return [r[column.name] for r in self.rows]


def _make_table(rng: random.Random, split: str) -> _Table:
    domain = rng.choice(_DOMAINS)
    name = rng.choice(domain.tables[split])
    n_cols = rng.randint(3, 5)
    others = [c for c in (*domain.categories, *domain.numbers)]
    # at least one number column, so every question type has something to aggregate
    chosen = [rng.choice(domain.numbers)]
    rest = [c for c in others if c not in chosen]
    chosen += rng.sample(rest, min(len(rest), n_cols - 2))
    columns = [domain.key] + [c for c in others if c in chosen]  # keep a stable column order
    n_rows = rng.randint(5, 12)
    keys = rng.sample(domain.key.values, n_rows)
    rows = [{domain.key.name: k} for k in keys]
    for column in columns[1:]:
        if column.type == "INTEGER":
            low, high = column.values
            for row, value in zip(rows, rng.sample(range(low, high + 1), n_rows), strict=True):
                row[column.name] = value
        else:
            # at least two distinct categories, so a WHERE on one of them filters something out
            pool = list(column.values)
            values = rng.sample(pool, 2) + [rng.choice(pool) for _ in range(n_rows - 2)]
            rng.shuffle(values)
            for row, value in zip(rows, values, strict=True):
                row[column.name] = value
    return _Table(name, domain, columns, rows)


def create_table_sql(table: _Table) -> str:
    """The ``CREATE TABLE`` statement of a generated table (one line)."""
    cols = ", ".join(f"{c.name} {c.type}" for c in table.columns)
    return f"CREATE TABLE {table.name} ({cols})"


def insert_sql(table: _Table) -> list[str]:
    """One ``INSERT`` statement per row of a generated table."""
    names = ", ".join(c.name for c in table.columns)
    return [f"INSERT INTO {table.name} ({names}) VALUES "
            f"({', '.join(_sql_value(r[c.name]) for c in table.columns)})" for r in table.rows]


def _sql_question(rng: random.Random, t: _Table) -> tuple[str, str, str] | None:
    """``(template id, question, gold SQL)`` for a random question type, or None if the table
    cannot support the drawn type (the caller draws again)."""
    d, key, name = t.domain, t.domain.key, t.name
    num = rng.choice(t.nums())
    cats = t.cats()
    kind = rng.choice(("lookup", "list_cat", "count_cat", "count_gt", "max", "min_cat", "avg",
                       "top1", "topk", "two_cond", "list_lt"))
    nums_sorted = sorted(t.values(num))
    if kind == "lookup":
        row = rng.choice(t.rows)
        q = _pick(rng, (f"What is the {num.words} of the {d.entity} whose {key.words} is "
                        f"{row[key.name]}?",
                        f"Find the {num.words} of {row[key.name]}."))
        return kind, q, f"SELECT {num.name} FROM {name} WHERE {key.name} = '{row[key.name]}'"
    if kind == "max":
        q = _pick(rng, (f"What is the highest {num.words}?",
                        f"What is the maximum {num.words} of all {d.entities}?"))
        return kind, q, f"SELECT MAX({num.name}) FROM {name}"
    if kind == "avg":
        q = f"What is the average {num.words} of the {d.entities}?"
        return kind, q, f"SELECT AVG({num.name}) FROM {name}"
    if kind == "top1":
        q = _pick(rng, (f"Which {d.entity} has the highest {num.words}?",
                        f"Give the {key.words} of the {d.entity} with the largest {num.words}."))
        return kind, q, f"SELECT {key.name} FROM {name} ORDER BY {num.name} DESC LIMIT 1"
    if kind == "topk":
        k = rng.choice((2, 3))
        q = f"List the {key.words}s of the {k} {d.entities} with the lowest {num.words}."
        return kind, q, f"SELECT {key.name} FROM {name} ORDER BY {num.name} ASC LIMIT {k}"
    if kind == "count_gt":
        # a threshold taken from the table: '>' and '>=' then give different counts
        x = rng.choice(nums_sorted[1:-1])
        q = f"How many {d.entities} have {_a(num.words)} greater than {x}?"
        return kind, q, f"SELECT COUNT(*) FROM {name} WHERE {num.name} > {x}"
    if kind == "list_lt":
        x = rng.choice(nums_sorted[1:-1])
        q = f"Which {d.entities} have {_a(num.words)} below {x}? Give their {key.words}s."
        return kind, q, f"SELECT {key.name} FROM {name} WHERE {num.name} < {x}"
    if not cats:
        return None
    cat = rng.choice(cats)
    value = rng.choice(t.values(cat))
    if kind == "list_cat":
        q = f"List the {key.words}s of the {d.entities} whose {cat.words} is {value}."
        return kind, q, f"SELECT {key.name} FROM {name} WHERE {cat.name} = '{value}'"
    if kind == "count_cat":
        q = _pick(rng, (f"How many {d.entities} have {cat.words} {value}?",
                        f"Count the {d.entities} whose {cat.words} is {value}."))
        return kind, q, f"SELECT COUNT(*) FROM {name} WHERE {cat.name} = '{value}'"
    if kind == "min_cat":
        q = f"What is the lowest {num.words} among {d.entities} whose {cat.words} is {value}?"
        return kind, q, f"SELECT MIN({num.name}) FROM {name} WHERE {cat.name} = '{value}'"
    # two_cond: a category and a threshold, chosen so at least one row satisfies both
    # (a value of the table when it can be, so '>=' for '>' answers differently)
    matching = sorted(r[num.name] for r in t.rows if r[cat.name] == value)
    x = matching[-2] if len(matching) >= 2 else matching[-1] - 1
    q = (f"List the {key.words}s of the {d.entities} whose {cat.words} is {value} and whose "
         f"{num.words} is greater than {x}.")
    return ("two_cond", q,
            f"SELECT {key.name} FROM {name} WHERE {cat.name} = '{value}' AND {num.name} > {x}")


def sql_example(rng: random.Random, split: str) -> dict[str, Any]:
    """One table, question, gold query and the INSERTs that make the query executable.

    Examples:
        >>> ex = sql_example(random.Random(0), "train")
        >>> ex["context"].startswith("CREATE TABLE"), ex["target"] == ex["gold_sql"]
        (True, True)
        >>> 5 <= len(ex["inserts"]) <= 12
        True
    """
    while True:
        table = _make_table(rng, split)
        drawn = _sql_question(rng, table)
        if drawn is not None:
            break
    kind, question, gold = drawn
    context = create_table_sql(table)
    prompt = (f"Given the table:\n{context}\nWrite an SQL query that answers: {question}\n"
              "Reply with only the SQL.")
    return {"prompt": prompt, "target": gold, "context": context, "inserts": insert_sql(table),
            "gold_sql": gold, "template": f"sql-{kind}"}


# ---------------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------------

_THINGS = ("apples", "marbles", "stickers", "pencils", "cookies", "stamps", "shells", "cards")


def _arith(rng: random.Random, split: str) -> tuple[str, str, list[str], int]:
    """``(template id, problem, worked steps, answer)``; each step reads ``'a op b = c.'``."""
    a_name, b_name = _people(rng, split, 2)
    thing = _pick(rng, _THINGS)
    kind = rng.choice(("add", "sub", "mul", "div", "add_sub", "mul_add", "change", "groups",
                       "wage", "bake", "share_rest", "speed"))
    r = rng.randint
    if kind == "add":
        a, b = r(5, 90), r(3, 60)
        text = (f"{a_name} has {a} {thing}. {b_name} gives {a_name} {b} more. "
                f"How many {thing} does {a_name} have now?")
        return kind, text, [f"{a} + {b} = {a + b}."], a + b
    if kind == "sub":
        a = r(20, 99)
        b = r(3, a - 1)
        text = (f"{a_name} had {a} {thing} and gave {b} of them to {b_name}. "
                f"How many {thing} does {a_name} have left?")
        return kind, text, [f"{a} - {b} = {a - b}."], a - b
    if kind == "mul":
        a, b = r(3, 24), r(2, 12)
        text = (f"A box holds {a} {thing}. {a_name} buys {b} boxes. "
                f"How many {thing} does {a_name} have?")
        return kind, text, [f"{a} * {b} = {a * b}."], a * b
    if kind == "div":
        q, b = r(2, 20), r(2, 9)
        a = q * b
        text = (f"{a_name} shares {a} {thing} equally among {b} friends. "
                "How many does each friend get?")
        return kind, text, [f"{a} / {b} = {q}."], q
    if kind == "add_sub":
        a, b = r(10, 60), r(5, 40)
        c = r(2, a + b - 1)
        text = (f"{a_name} has {a} {thing}, buys {b} more and then gives {c} to {b_name}. "
                f"How many {thing} does {a_name} have now?")
        return kind, text, [f"{a} + {b} = {a + b}.", f"{a + b} - {c} = {a + b - c}."], a + b - c
    if kind == "mul_add":
        a, b, c = r(2, 9), r(4, 12), r(1, 30)
        text = (f"{a_name} buys {a} packs of {thing} with {b} in each pack and already had {c}. "
                f"How many {thing} does {a_name} have in total?")
        return kind, text, [f"{a} * {b} = {a * b}.", f"{a * b} + {c} = {a * b + c}."], a * b + c
    if kind == "change":
        a, b = r(2, 8), r(2, 9)
        c = rng.choice([v for v in (20, 50, 100) if v > a * b])
        text = (f"{a_name} buys {a} notebooks at ${b} each and pays with a ${c} bill. "
                "How many dollars of change does the shop give back?")
        return kind, text, [f"{a} * {b} = {a * b}.", f"{c} - {a * b} = {c - a * b}."], c - a * b
    if kind == "groups":
        g, groups, k = r(2, 6), r(3, 8), r(2, 9)
        n = g * groups
        text = (f"{a_name}'s class of {n} students is split into groups of {g}. Each group "
                f"gets {k} markers. How many markers are handed out?")
        return kind, text, [f"{n} / {g} = {groups}.", f"{groups} * {k} = {groups * k}."], groups * k
    if kind == "wage":
        a, b, c = r(8, 25), r(2, 8), r(2, 8)
        d = r(5, a * (b + c) - 1)
        total = a * (b + c)
        text = (f"{a_name} earns ${a} per hour, works {b} hours on Monday and {c} hours on "
                f"Tuesday, then spends ${d}. How many dollars does {a_name} have left?")
        steps = [f"{b} + {c} = {b + c}.", f"{a} * {b + c} = {total}.", f"{total} - {d} = {total - d}."]
        return kind, text, steps, total - d
    if kind == "bake":
        a, b, d = r(2, 5), r(6, 12), r(2, 6)
        q = r(1, (a * b - 1) // d)
        c = a * b - d * q  # eaten, >= 1
        text = (f"{a_name} bakes {a} trays of {b} cookies, eats {c} of them and packs the rest "
                f"equally into {d} bags. How many cookies go in each bag?")
        steps = [f"{a} * {b} = {a * b}.", f"{a * b} - {c} = {d * q}.", f"{d * q} / {d} = {q}."]
        return kind, text, steps, q
    if kind == "share_rest":
        c, q = r(2, 6), r(3, 15)
        b = r(2, 30)
        a = c * q + b
        text = (f"{a_name} has ${a}, spends ${b} on lunch and splits the rest equally among "
                f"{c} friends. How many dollars does each friend get?")
        return kind, text, [f"{a} - {b} = {c * q}.", f"{c * q} / {c} = {q}."], q
    a, b = r(40, 120), r(2, 6)  # speed
    text = (f"{a_name}'s train travels at {a} km per hour for {b} hours. "
            "How many kilometres does it travel?")
    return kind, text, [f"{a} * {b} = {a * b}."], a * b


def arithmetic_example(rng: random.Random, split: str) -> dict[str, Any]:
    """One word problem with a worked answer ending in ``"The answer is N."``.

    Examples:
        >>> ex = arithmetic_example(random.Random(0), "train")
        >>> ex["target"].endswith(f"The answer is {ex['answer']}.")
        True
    """
    kind, problem, steps, answer = _arith(rng, split)
    instruction = _pick(rng, ("Solve the problem and end with 'The answer is N.'",
                              "Solve this word problem step by step. Finish with "
                              "'The answer is N.' where N is a number.",
                              "Work out the answer. End your reply with 'The answer is N.'"))
    return {"prompt": f"{instruction}\n\n{problem}", "target": " ".join(steps)
            + f" The answer is {answer}.", "answer": answer, "steps": steps,
            "template": f"arith-{kind}"}


_MAKERS: dict[str, Callable[[random.Random, str], dict[str, Any]]] = {
    "summarization": summarization_example, "sql": sql_example, "arithmetic": arithmetic_example}


def utility_examples(task: str, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` examples of one task and split, with distinct prompts (deterministic for a seed).

    Each example holds ``prompt``, ``target``, ``template`` and the task's fields (see
    :func:`summarization_example`, :func:`sql_example`, :func:`arithmetic_example`).

    Raises:
        SafelensError: unknown task or split, ``n < 1``, or ``n`` more than the templates can
            produce distinct prompts for.
    """
    if task not in TASKS:
        raise SafelensError(f"unknown utility task {task!r}; expected one of {TASKS}")
    if split not in SPLITS:
        raise SafelensError(f"unknown utility split {split!r}; expected one of {SPLITS}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SafelensError(f"utility set size n must be an integer >= 1, got {n!r}")
    rng = random.Random(f"safelens-utility:{seed}:{task}:{split}")
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for _ in range(50 * n):
        example = _MAKERS[task](rng, split)
        if example["prompt"] in seen:
            continue
        seen.add(example["prompt"])
        out.append(example)
        if len(out) == n:
            return out
    raise SafelensError(f"utility task {task!r}, split {split!r}: only {len(out)} distinct "
                        f"prompts after {50 * n} draws; expected n={n} (ask for fewer rows)")
