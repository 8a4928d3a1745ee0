#!/usr/bin/env python3
"""A browser stand-in for `make demo` (used as $BROWSER): does what a user's browser does with the URL.

tokenvault starts $BROWSER with the URL as the last argument and its output sent to /dev/null, so this script
reports to the file named by DEMO_BROWSER_LOG, if set.

- tokenvault's single-use launch address: GET it; it redirects to the authorize URL. GET that without following
  the redirect (provider-sandbox approves at once, as a signed-in user who clicks "Accept" would), then GET the
  Location, which is tokenvault's loopback listener.
- A file:// page (device grant): read its meta refresh and GET the URL it names.
- A device-grant verification URL: GET it; the sandbox approves the device at once.
Only the standard library: python3 is on every machine, curl may not be.
"""
import html
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


class DoNotFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError carrying the 3xx and its Location


def log(message):
    path = os.environ.get("DEMO_BROWSER_LOG")
    if path:
        with open(path, "a") as f:
            f.write(message + "\n")


def page_target(url):
    """tokenvault hands the browser a private file:// page (device grant, paste mode) whose meta refresh names
    the real URL: read it as a browser would."""
    path = urllib.parse.unquote(url[len("file://"):])
    with open(path) as f:
        match = re.search(r'http-equiv="refresh" content="0;url=([^"]*)"', f.read())
    return html.unescape(match.group(1))


def main():
    if len(sys.argv) != 2:
        log("usage: demo-browser.py URL")
        return 2
    url = sys.argv[1]
    if url.startswith("file://"):
        url = page_target(url)
        log("browser: read tokenvault's page")
    # Loopback only: never through a proxy from the environment. Redirects are followed by hand (at most three:
    # tokenvault's single-use launch address, the provider's authorize endpoint, the callback), logging each.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), DoNotFollow())
    for _ in range(4):
        try:
            with opener.open(url, timeout=10) as response:
                log(f"browser: GET {url.split('?')[0]} -> {response.status}")
                return 0
        except urllib.error.HTTPError as error:
            if error.code not in (301, 302, 303, 307, 308):
                log(f"browser: GET {url.split('?')[0]} -> {error.code}")
                return 1
            location = error.headers.get("Location")
        except (urllib.error.URLError, OSError) as error:
            log(f"browser: GET {url.split('?')[0]} failed: {error}")
            return 1
        log(f"browser: GET {url.split('?')[0]} -> redirect to {location.split('?')[0]}")
        url = location
    return 1


if __name__ == "__main__":
    sys.exit(main())
