"""The views need no build: their libraries are the published browser files of the packages
pinned in web/package-lock.json, copied by `make web-vendor`. This checks the copies in the
package are exactly those files (so nobody edits a vendored library by hand, and a version bump
in the lock is not forgotten in the package)."""

from __future__ import annotations

import json

import pytest

from tests.web.browser import ROOT, unavailable

VENDOR = ROOT / "src" / "mindharbor" / "web" / "static" / "views" / "vendor"
MODULES = ROOT / "web" / "node_modules"
COPIES = {
    "parse.min.js": ("parse", "dist/parse.min.js"),
    "preact-htm.module.js": ("htm", "preact/standalone.module.js"),
    "qrcode.js": ("qrcode-generator", "qrcode.js"),
}


@pytest.mark.parametrize("copy", sorted(COPIES))
def test_vendored_file_is_the_locked_package_file(copy: str) -> None:
    package, path = COPIES[copy]
    if not (MODULES / package / "package.json").is_file():
        unavailable("web libraries not installed: run `npm ci --prefix web` (make node-deps)")
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    locked = lock["packages"][f"node_modules/{package}"]["version"]
    installed = json.loads((MODULES / package / "package.json").read_text())["version"]
    assert installed == locked, f"{package}: installed {installed}, locked {locked}: npm ci"
    assert (VENDOR / copy).read_bytes() == (MODULES / package / path).read_bytes(), (
        f"{copy} differs from {package}@{locked}/{path}: run `make web-vendor`"
    )
