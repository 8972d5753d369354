#!/usr/bin/env python3
"""Drives the admin traffic map page in headless Chromium (WebDriver, through
Debian's python3-selenium and chromium-driver) for tests/integration/map_page.rs.

  map_page.py ADMIN_URL TOKEN SCREENSHOT REGION...

REGION... are the regions the page must list. The first one is failed by a
what-if switch, then drained through the admin API. Prints one line of JSON
with what it saw; exits 1 with the reason when the page misbehaves, 2 when
the browser cannot be started (the caller decides whether that is a skip).
"""

import json
import sys
import time
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError as e:
    print(f"no selenium: {e}", file=sys.stderr)
    sys.exit(2)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_for(what, pred, timeout):
    """Polls pred() every 50 ms; returns (value, seconds taken) or fails."""
    start = time.monotonic()
    while True:
        v = pred()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > timeout:
            fail(f"{what}: not seen within {timeout} s")
        time.sleep(0.05)


def main():
    base, token, shot, regions = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    target = regions[0]
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions"]:
        opts.add_argument(a)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as e:  # noqa: BLE001 - any start failure means "no browser here"
        print(f"cannot start headless Chromium: {e}", file=sys.stderr)
        sys.exit(2)
    seen = {}
    try:
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(10)
        driver.get(base + "/?service=www")

        def states():
            rows = driver.find_elements(By.CSS_SELECTOR, "#regions tr.region")
            return {r.get_attribute("data-region"): r.get_attribute("data-state") for r in rows}

        got, _ = wait_for("every region listed", lambda: (lambda s: s if all(r in s for r in regions) else None)(states()), 10)
        seen["states_before"] = got
        for r in regions:
            if got[r] != "up":
                fail(f"region {r} is {got[r]!r} at start, expected up")
        sel = driver.find_element(By.ID, "service").get_attribute("value")
        seen["service"] = sel

        def dots():
            return {d.get_attribute("data-country"): (d.get_attribute("data-region"), d.get_attribute("fill"))
                    for d in driver.find_elements(By.CSS_SELECTOR, "#clients circle.client")}

        before, _ = wait_for("client dots drawn", dots, 5)
        mine = {cc for cc, (r, _) in before.items() if r == target}
        if not mine:
            fail(f"no country is coloured for {target} on the map: {before}")
        seen["dots_before"] = before

        # What-if: fail the target region; its countries must change colour.
        driver.find_element(By.ID, "whatif-" + target).click()

        def recoloured():
            d = dots()
            ok = all(cc in d and d[cc][0] != target and d[cc][1] != before[cc][1] for cc in mine)
            return d if ok else None

        after, took = wait_for(f"what-if {target}: its countries recoloured", recoloured, 3)
        seen["dots_whatif"], seen["whatif_seconds"] = after, round(took, 3)
        others = {cc: v for cc, v in before.items() if cc not in mine}
        for cc, v in others.items():
            if after.get(cc) != v and v[0] != target:
                # Countries of other regions keep theirs (the demo's geo policy).
                fail(f"what-if {target} recoloured {cc} too: {v} -> {after.get(cc)}")
        row = driver.find_element(By.ID, "region-" + target)
        if row.get_attribute("data-state") != "up" or "whatif-failed" not in row.get_attribute("class"):
            fail("a what-if must mark the row, not change the region's state")
        # The screenshot for docs/: the what-if drawn (map, shares now -> after, moves).
        if not driver.save_screenshot(shot):
            fail("no screenshot")
        driver.find_element(By.ID, "whatif-" + target).click()
        wait_for("what-if cleared", lambda: dots() == before, 3)

        # Drain through the admin API: the page must show it within 2 s.
        req = urllib.request.Request(f"{base}/regions/{target}/drain", method="POST",
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5) as resp:
            if resp.status != 200:
                fail(f"drain answered {resp.status}")
        _, took = wait_for(f"{target} drained on the page",
                           lambda: states().get(target) == "drained", 2.0)
        seen["drain_seconds"] = round(took, 3)
        drained, _ = wait_for("the map follows the drain",
                              lambda: (lambda d: d if all(d.get(cc, (target,))[0] != target for cc in mine) else None)(dots()), 2)
        seen["dots_drained"] = drained
        site = driver.find_element(By.CSS_SELECTOR, f'#sites circle.site[data-region="{target}"]')
        if site.get_attribute("data-state") != "drained" or "out" not in site.get_attribute("class"):
            fail("the region's marker does not show the drain")
        if driver.find_element(By.ID, "error").text:
            fail("the page reports an error: " + driver.find_element(By.ID, "error").text)
    finally:
        driver.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
