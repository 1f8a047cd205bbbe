"""Headless Chromium for the tests that render a page (`make browser`)."""

import shutil
import subprocess

CHROMIUM = shutil.which("chromium")


def dump_dom(url: str, timeout: float = 90) -> str:
    """The page's DOM after its scripts ran; a failed launch fails the test."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout
