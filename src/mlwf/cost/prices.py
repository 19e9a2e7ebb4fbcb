"""The price table (`prices.csv`): one row per rate and region with its unit, USD price, where
it was read (AWS's public price list: offer and usage type) and when. `refresh` rereads every
row that names an offer from the price list's bulk files; a rate the list does not carry (Fargate
Spot) keeps its row and says so."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.settings import REGION_PATTERN
from mlwf.storage import write_bytes

PRICES = Path(__file__).with_name("prices.csv")
PRICE_LIST = "https://pricing.us-east-1.amazonaws.com"


@dataclass(frozen=True)
class Price:
    rate: str
    region: str
    unit: str
    usd: float
    offer: str  # the price list's offer code ("" for a rate the list does not carry)
    usage_type: str  # the usage type without its region prefix
    source: str
    read_on: str


Prices = dict[tuple[str, str], Price]  # (rate, region) -> price


def load_prices(path: Path = PRICES) -> Prices:
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the price table ({exc.strerror})") from None
    table: Prices = {}
    for number, row in enumerate(rows, start=2):
        try:
            price = Price(
                row["rate"],
                row["region"],
                row["unit"],
                float(row["usd"]),
                row["offer"],
                row["usage_type"],
                row["source"],
                row["read_on"],
            )
        except (TypeError, ValueError, KeyError):
            raise UserError(f"{path}:{number}: expected {', '.join(f.name for f in fields(Price))}") from None
        table[(price.rate, price.region)] = price
    return table


def write_prices(table: Prices, path: Path = PRICES) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, [f.name for f in fields(Price)], lineterminator="\n")
    writer.writeheader()
    for price in table.values():
        writer.writerow({**price.__dict__, "usd": f"{price.usd:g}"})
    write_bytes(str(path), out.getvalue().encode())


def add_regions(table: Prices, regions: Iterable[str]) -> tuple[Prices, list[str]]:
    """The table with a row of every rate for each new region (for a platform in another region):
    a rate the price list has is read by `refresh`; one entered by hand is copied from the region
    it was entered for, said in its source and the log (check it by hand)."""
    added, log = dict(table), []
    for region in regions:
        if not re.fullmatch(REGION_PATTERN, region):
            raise UserError(f"{region!r} is not an AWS region name (like eu-west-1)")
        for rate in sorted({rate for rate, _ in table}):
            if (rate, region) in added:
                continue
            entered_for = min(e for r, e in table if r == rate)
            price = table[(rate, entered_for)]
            copied = replace(price, region=region)
            if not price.offer:
                copied = replace(copied, source=f"as entered for {entered_for}, check for {region}: {price.source}")
                usd = f"{price.usd:g} USD/{price.unit}"
                log.append(f"{rate} ({region}): copied {usd} from {entered_for} (not in the price list)")
            added[(rate, region)] = copied
    return added, log


def refresh(table: Prices, endpoint: str = PRICE_LIST, today: date | None = None) -> tuple[Prices, list[str]]:
    """Every row with an offer reread from the price list at `endpoint`; (new table, what was
    done per row). A usage type the list lacks is an error: nothing is half-refreshed."""
    today = today or date.today()
    offers: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    refreshed: Prices = {}
    log: list[str] = []
    for key, price in table.items():
        if not price.offer:
            refreshed[key] = price
            log.append(f"{price.rate} ({price.region}): kept {price.usd:g} USD/{price.unit}, not in the price list")
            continue
        if (price.offer, price.region) not in offers:
            offers[(price.offer, price.region)] = _offer_file(endpoint, price.offer, price.region)
        url, document = offers[(price.offer, price.region)]
        sku, usd = _find(document, price.usage_type, f"{price.offer}/{price.region}")
        refreshed[key] = replace(price, usd=usd, source=f"{url} sku {sku}", read_on=today.isoformat())
        log.append(f"{price.rate} ({price.region}): {price.usd:g} -> {usd:g} USD/{price.unit}")
    return refreshed, log


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot read the AWS price list at {url} ({reason})") from None


def _offer_file(endpoint: str, offer: str, region: str) -> tuple[str, dict[str, Any]]:
    index_url = f"{endpoint.rstrip('/')}/offers/v1.0/aws/{offer}/current/region_index.json"
    regions = _get_json(index_url).get("regions", {})
    if region not in regions:
        raise UserError(f"the AWS price list has no {offer} prices for {region} ({index_url})")
    url = endpoint.rstrip("/") + regions[region]["currentVersionUrl"]
    return url, _get_json(url)


def _find(document: dict[str, Any], usage_type: str, where: str) -> tuple[str, float]:
    """The on-demand USD price of a usage type (region prefix ignored; first tier of a tiered price)."""
    skus = [
        sku
        for sku, product in document.get("products", {}).items()
        if (found := product.get("attributes", {}).get("usagetype", "")) == usage_type
        or found.endswith(f"-{usage_type}")
    ]
    candidates: dict[float, str] = {}
    for sku in skus:
        for term in document.get("terms", {}).get("OnDemand", {}).get(sku, {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                if str(dimension.get("beginRange", "0")) in ("0", "0.0"):
                    candidates.setdefault(float(dimension["pricePerUnit"]["USD"]), sku)
    if not candidates:
        raise UserError(f"the AWS price list {where} has no on-demand price for usage type {usage_type}")
    if len(candidates) > 1:
        raise UserError(
            f"the AWS price list {where} has {len(candidates)} prices for usage type {usage_type}: "
            + ", ".join(f"{usd:g}" for usd in sorted(candidates))
        )
    ((usd, sku),) = candidates.items()
    return sku, usd
