"""What a user would otherwise write: refresh many Webex token pairs with authlib + httpx.

    python refresh_script.py ACCOUNTS.json RESULTS.json

ACCOUNTS.json: {"token_url", "client_id", "client_secret", "concurrency", "accounts": [{"account", "refresh_token"}]}.
Refreshes every account with at most `concurrency` requests in flight (asyncio, one authlib AsyncOAuth2Client per
worker: a client keeps one token, so it must not be shared by concurrent refreshes), writes every new pair to
RESULTS.json (plain JSON, written once at the end, atomically) and prints a one-line JSON summary.
Generated seed data only; never real tokens.
"""
import asyncio
import json
import os
import sys
import time

from authlib.integrations.httpx_client import AsyncOAuth2Client


async def worker(queue, config, results, failures):
    # client_secret_post: Webex's samples send the secret in the form body.
    async with AsyncOAuth2Client(
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        token_endpoint_auth_method="client_secret_post",
        timeout=30,
    ) as client:
        while True:
            try:
                account = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                token = await client.refresh_token(config["token_url"], refresh_token=account["refresh_token"])
                now = time.time()
                results[account["account"]] = {
                    "access_token": token["access_token"],
                    "refresh_token": token.get("refresh_token", account["refresh_token"]),
                    "access_expires_at": now + int(token["expires_in"]),
                    "refresh_expires_at": now + int(token.get("refresh_token_expires_in", 0)),
                }
            except Exception as error:  # noqa: BLE001 - report every failure, keep going
                failures[account["account"]] = repr(error)


async def main(accounts_path, results_path):
    started = time.monotonic()
    with open(accounts_path) as f:
        config = json.load(f)
    queue = asyncio.Queue()
    for account in config["accounts"]:
        queue.put_nowait(account)
    results, failures = {}, {}
    workers = [worker(queue, config, results, failures) for _ in range(config["concurrency"])]
    await asyncio.gather(*workers)
    temporary = results_path + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"accounts": results, "failures": failures}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, results_path)
    print(json.dumps({"refreshed": len(results), "failed": len(failures),
                      "seconds": round(time.monotonic() - started, 3)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
