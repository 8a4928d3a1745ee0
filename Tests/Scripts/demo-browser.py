#!/usr/bin/env python3
"""A browser stand-in for `make demo` (used as $BROWSER): does what a user's browser does with the URL.

tokenvault starts $BROWSER with the URL as the last argument and its output sent to /dev/null, so this script
reports to the file named by DEMO_BROWSER_LOG, if set.

- An authorize URL: GET it without following the redirect (webex-sandbox approves at once, as a signed-in user
  who clicks "Accept" would), then GET the Location, which is tokenvault's loopback listener.
- A device-grant verification URL: GET it; the sandbox approves the device at once.
Only the standard library: python3 is on every machine, curl may not be.
"""
import os
import sys
import urllib.error
import urllib.request


class DoNotFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError carrying the 3xx and its Location


def log(message):
    path = os.environ.get("DEMO_BROWSER_LOG")
    if path:
        with open(path, "a") as f:
            f.write(message + "\n")


def main():
    if len(sys.argv) != 2:
        log("usage: demo-browser.py URL")
        return 2
    url = sys.argv[1]
    # Loopback only: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), DoNotFollow())
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
    try:
        with opener.open(location, timeout=10) as response:
            log(f"browser: GET {location.split('?')[0]} -> {response.status}")
            return 0
    except (urllib.error.URLError, OSError) as error:
        log(f"browser: GET {location.split('?')[0]} failed: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
