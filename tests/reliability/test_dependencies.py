"""The lower bounds in pyproject.toml stay past the releases with published advisories, so that an install made
without constraints.txt cannot pick a known-vulnerable version."""
from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# The first release fixing the newest advisory known for each package (GHSA / CVE ids for reference).
FIXED = {
    "flask": "3.1.1",          # CVE-2025-47278: fallback keys used in the wrong order
    "werkzeug": "3.1.4",       # CVE-2024-49767 (multipart memory), GHSA-hgf8-39gv-g3f2 (safe_join device names)
    "jinja2": "3.1.6",         # CVE-2025-27516, CVE-2024-56201, CVE-2024-56326: sandbox escapes
    "cryptography": "44.0.1",  # CVE-2024-26130, CVE-2024-12797 (the OpenSSL in its wheels)
    "gunicorn": "23",          # CVE-2024-1135, CVE-2024-6827: request smuggling
    "scikit-learn": "1.5",     # CVE-2024-5206: TfidfVectorizer keeps the stop words it dropped
    "idna": "3.7",             # CVE-2024-3651: quadratic decoding
    "mako": "1.2.2",           # CVE-2022-40023: a regular expression's catastrophic backtracking
    "aiosmtpd": "1.4.6",       # CVE-2024-27305, CVE-2024-34083: SMTP smuggling, STARTTLS injection
    "setuptools": "78.1.1",    # CVE-2025-47273, CVE-2024-6345: path traversal, code injection
}


def lower_bounds() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = [*project["project"]["dependencies"], *project["build-system"]["requires"],
             *(text for extra in project["project"]["optional-dependencies"].values() for text in extra)]
    bounds = {}
    for text in texts:
        requirement = Requirement(text)
        floors = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
        bounds[requirement.name.lower()] = max(floors) if floors else Version("0")
    return bounds


def test_every_lower_bound_is_past_its_advisories():
    bounds = lower_bounds()
    behind = {name: f"{bounds.get(name)} < {fixed}" for name, fixed in FIXED.items()
              if bounds.get(name, Version("0")) < Version(fixed)}
    assert behind == {}


def test_the_constraints_are_within_the_bounds():
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.lower()] = Version(version)
    assert {name: str(pinned[name]) for name, floor in lower_bounds().items()
            if name in pinned and pinned[name] < floor} == {}
