"""How the console's browser tests and its render bench launch Debian's Chromium through Playwright: one definition,
so that the figures and the tests drive the same browser the same way (`make browser-deps` installs it; never
`playwright install`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
