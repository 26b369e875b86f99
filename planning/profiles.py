"""Resource profiles (CPU, memory, price) and catalogs of them.

A *profile* is what a worker is sized as: a serverless function's memory size
(with vCPUs tied to it, as on AWS Lambda) or a cgroup's CPU quota and memory limit
on a local machine.  A *catalog* is the menu a planner chooses from.

Built-in catalogs:

``lambda``
    AWS Lambda's memory sizes from 128 MB to 10 GB.  Lambda allots vCPU in
    proportion to memory: one full vCPU at 1,769 MB, up to 6 vCPUs at 10,240 MB.
    Price is Lambda's x86 rate, $0.0000166667 per GB-second.
``local``
    Profiles a 2-core laptop or CI machine can really enforce with CPU quotas and
    memory limits: 0.5, 1 and 2 CPUs.  Priced at the same per-GB-second rate so
    costs are comparable with ``lambda``.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from planning.errors import CatalogError
from planning.names import did_you_mean

#: AWS Lambda x86 price per GB-second (us-east-1).
LAMBDA_PRICE_PER_GB_S = 0.0000166667
#: Memory at which Lambda gives one full vCPU.
LAMBDA_MB_PER_VCPU = 1769.0


@dataclass(frozen=True)
class ResourceProfile:
    """A worker size: ``cpus`` may be fractional (0.5 = half a core's time).

    ``concurrency`` is how many tasks one worker runs at once (1 on serverless
    platforms).  ``price_per_s`` is dollars per second a worker of this profile
    is alive.
    """

    name: str
    cpus: float
    memory_mb: float
    price_per_s: float
    concurrency: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CatalogError("a profile needs a non-empty name", "give each profile a name")
        for field_name in ("cpus", "memory_mb"):
            value = getattr(self, field_name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise CatalogError(f"profile {self.name!r}: {field_name} must be a positive number, got {value!r}",
                                   f"set {field_name} > 0")
        if not isinstance(self.price_per_s, (int, float)) or self.price_per_s < 0:
            raise CatalogError(f"profile {self.name!r}: price_per_s must be >= 0, got {self.price_per_s!r}",
                               "set price_per_s to a non-negative number")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise CatalogError(f"profile {self.name!r}: concurrency must be an integer >= 1, got {self.concurrency!r}",
                               "set concurrency = 1 for serverless-style workers")

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024.0

    def to_dict(self) -> dict:
        return asdict(self)


class Catalog:
    """An ordered, named collection of profiles (order: as given)."""

    def __init__(self, profiles: Iterable[ResourceProfile], name: str = "custom") -> None:
        self.name = name
        self._profiles: dict[str, ResourceProfile] = {}
        for p in profiles:
            if p.name in self._profiles:
                raise CatalogError(f"catalog {name!r} lists profile {p.name!r} twice", "give every profile a unique name")
            self._profiles[p.name] = p
        if not self._profiles:
            raise CatalogError(f"catalog {name!r} is empty", "list at least one [[profile]] in the catalog")

    def __iter__(self) -> Iterator[ResourceProfile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __getitem__(self, name: str) -> ResourceProfile:
        try:
            return self._profiles[name]
        except KeyError:
            raise CatalogError(f"unknown profile {name!r} in catalog {self.name!r}{did_you_mean(name, self._profiles)}",
                               f"use one of: {', '.join(self._profiles)}") from None

    def __repr__(self) -> str:
        return f"Catalog({self.name!r}, {list(self._profiles)})"

    @property
    def names(self) -> list[str]:
        return list(self._profiles)

    @property
    def profiles(self) -> list[ResourceProfile]:
        return list(self._profiles.values())

    def fastest(self) -> ResourceProfile:
        """The profile with the most CPUs (ties: more memory, then cheaper)."""
        return max(self, key=lambda p: (p.cpus, p.memory_mb, -p.price_per_s))

    def cheapest(self) -> ResourceProfile:
        """The profile with the lowest price per second (ties: fewer CPUs)."""
        return min(self, key=lambda p: (p.price_per_s, p.cpus, p.memory_mb))

    def by_price(self) -> list[ResourceProfile]:
        """Profiles from cheapest to most expensive per second."""
        return sorted(self, key=lambda p: (p.price_per_s, p.cpus, p.memory_mb, p.name))

    def subset(self, names: Iterable[str]) -> "Catalog":
        return Catalog([self[n] for n in names], name=self.name)

    def to_dict(self) -> dict:
        return {"name": self.name, "profile": [p.to_dict() for p in self]}

    def to_toml(self) -> str:
        lines = [f'name = "{self.name}"', ""]
        for p in self:
            lines += ["[[profile]]", f'name = "{p.name}"', f"cpus = {p.cpus!r}", f"memory_mb = {p.memory_mb!r}",
                      f"price_per_s = {p.price_per_s!r}", f"concurrency = {p.concurrency}", ""]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: dict, default_name: str = "custom") -> "Catalog":
        raw = data.get("profile", data.get("profiles"))
        if not isinstance(raw, list):
            raise CatalogError("a catalog needs a list of profiles under [[profile]]",
                               'add entries like [[profile]] name = "small" cpus = 0.5 memory_mb = 512 price_per_s = 8e-6')
        profiles = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise CatalogError(f"profile #{i + 1} is not a table", "write each profile as a [[profile]] table")
            missing = [k for k in ("name", "cpus", "memory_mb") if k not in entry]
            if missing:
                raise CatalogError(f"profile #{i + 1} lacks {', '.join(missing)}", "give name, cpus, memory_mb and price_per_s")
            unknown = set(entry) - {"name", "cpus", "memory_mb", "price_per_s", "concurrency"}
            if unknown:
                raise CatalogError(f"profile {entry.get('name')!r} has unknown keys {sorted(unknown)}",
                                   "use only name, cpus, memory_mb, price_per_s, concurrency")
            price = entry.get("price_per_s")
            if price is None:
                price = LAMBDA_PRICE_PER_GB_S * float(entry["memory_mb"]) / 1024.0
            profiles.append(ResourceProfile(str(entry["name"]), entry["cpus"], entry["memory_mb"], price,
                                            entry.get("concurrency", 1)))
        return cls(profiles, name=str(data.get("name", default_name)))

    @classmethod
    def from_toml(cls, path: str | Path) -> "Catalog":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise CatalogError(f"catalog file {str(path)!r} does not exist",
                               f"give a built-in catalog name ({', '.join(BUILTIN_CATALOGS)}) or an existing TOML file") from None
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"catalog file {str(path)!r} is not valid TOML: {exc}", "fix the TOML syntax") from None
        return cls.from_dict(data, default_name=path.stem)


def _lambda_catalog() -> Catalog:
    sizes = [128, 512, 1024, 1769, 3008, 5307, 7076, 10240]
    profiles = []
    for mb in sizes:
        cpus = round(min(6.0, mb / LAMBDA_MB_PER_VCPU), 4)
        profiles.append(ResourceProfile(f"lambda-{mb}", cpus, float(mb), LAMBDA_PRICE_PER_GB_S * mb / 1024.0))
    return Catalog(profiles, name="lambda")


def _local_catalog() -> Catalog:
    spec = [("small", 0.5, 512), ("medium", 1.0, 1024), ("large", 2.0, 2048)]
    return Catalog([ResourceProfile(n, c, float(m), LAMBDA_PRICE_PER_GB_S * m / 1024.0) for n, c, m in spec], name="local")


BUILTIN_CATALOGS = {"lambda": _lambda_catalog, "local": _local_catalog}


def load_catalog(name_or_path: "str | Path | Catalog") -> Catalog:
    """A built-in catalog by name (``lambda``, ``local``) or a TOML file."""
    if isinstance(name_or_path, Catalog):
        return name_or_path
    text = str(name_or_path)
    if text in BUILTIN_CATALOGS:
        return BUILTIN_CATALOGS[text]()
    if text.endswith(".toml") or Path(text).exists():
        return Catalog.from_toml(text)
    raise CatalogError(f"unknown catalog {text!r}{did_you_mean(text, BUILTIN_CATALOGS)}",
                       f"use a built-in catalog ({', '.join(BUILTIN_CATALOGS)}) or the path of a TOML file")
