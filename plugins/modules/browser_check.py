#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: browser_check
short_description: Load a page in headless Chromium and fail on console errors, failed requests or a missing element
version_added: 0.1.0
description:
  - Loads O(url) in headless Chromium, as a person opening the page would, and judges what happened.
  - The check fails on a console error (C(console.error), an uncaught exception, a browser log entry of level error),
    on a failed request (a network error, or an HTTP status of 400 or more, of the page itself or of any image,
    script, stylesheet or C(fetch) it makes) and, with O(wait_for), when no element matches that CSS selector before
    O(timeout). The browser's own request for C(/favicon.ico) does not count.
  - After the load event the check waits until no request has been in flight for half a second, so requests the
    page makes from its scripts are judged too. The whole check, browser start included, takes at most O(timeout).
  - Chromium is driven over the DevTools protocol on C(--remote-debugging-pipe); no Python package is needed. Each
    run uses a new temporary profile, removed afterwards, and the browser is always killed.
  - Runs where the module runs; to load a page as a visitor would, run it on the controller (delegated to
    C(localhost)) against the host's address, as the verify role does.
author:
  - HomeIQ maintainers (!UNKNOWN)
requirements:
  - Chromium (Debian's C(chromium) package; C(scripts/ensure-chromium) or C(make test-services) installs it)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Loading a page is read-only, so the page is loaded in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Loading a page changes nothing; C(changed) is always false.
options:
  url:
    description: Page to load (V(http://), V(https://) or V(file://)).
    type: str
    required: true
  wait_for:
    description:
      - CSS selector of an element the page must show, for example one its scripts add once their data arrived
        (C(#metrics td)). Waited for up to O(timeout).
      - Without it, the page must load without errors.
    type: str
  timeout:
    description: Seconds for the whole check (starting the browser, loading, waiting for O(wait_for)).
    type: float
    default: 30
  executable:
    description:
      - Chromium to run. By default the one named by the environment variable C(HOMEIQ_CHROMIUM), else
        C(/usr/bin/chromium).
    type: path
notes:
  - A page that is still loading (or still making requests) at O(timeout) fails, naming what was seen so far.
seealso:
  - module: homeiq.deploy.health_probe
"""

EXAMPLES = r"""
- name: The dashboard loads and shows its metrics
  homeiq.deploy.browser_check:
    url: http://dashboard.example.com:3000/
    wait_for: "#metrics td"
    timeout: 30
  delegate_to: localhost

- name: The Synergies page, judged without failing the play
  homeiq.deploy.browser_check:
    url: http://dashboard.example.com:3000/synergies
    wait_for: "[data-page=synergies]"
  delegate_to: localhost
  register: synergies_page
  failed_when: false
"""

RETURN = r"""
ok:
  description: Whether the page passed every check.
  returned: always
  type: bool
  sample: false
url:
  description: The page loaded.
  returned: always
  type: str
  sample: http://127.0.0.1:3000/
status_code:
  description: HTTP status of the page itself; null without an answer.
  returned: when the browser ran
  type: int
  sample: 200
console_errors:
  description: Console errors, uncaught exceptions and error log entries, each with where it happened.
  returned: always
  type: list
  elements: str
  sample: ["console.error: metrics unavailable (http://127.0.0.1:3000/:12)"]
failed_requests:
  description: Requests that failed (a network error or an HTTP status of 400 or more).
  returned: always
  type: list
  elements: dict
  contains:
    url:
      description: URL of the request.
      type: str
    type:
      description: What it loaded (Document, Image, Script, Fetch, ...).
      type: str
    status:
      description: HTTP status, null for a network error.
      type: int
    error:
      description: C(HTTP <status>) or the browser's network error, for example C(net::ERR_CONNECTION_REFUSED).
      type: str
  sample: [{url: "http://127.0.0.1:3000/logo.png", type: Image, status: 404, error: HTTP 404}]
element_found:
  description: Whether O(wait_for) matched an element; null without O(wait_for).
  returned: always
  type: bool
  sample: true
loaded:
  description: Whether the page fired its load event.
  returned: when the browser ran
  type: bool
elapsed_ms:
  description: Milliseconds the whole check took.
  returned: always
  type: float
  sample: 812.4
browser:
  description: The Chromium that ran.
  returned: when the browser ran
  type: str
  sample: /usr/bin/chromium
msg:
  description: One line saying what passed or what failed.
  returned: always
  type: str
  sample: "browser check of http://127.0.0.1:3000/ failed: 1 failed request: http://127.0.0.1:3000/logo.png HTTP 404"
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homeiq.deploy.plugins.module_utils._browser import BrowserError, check_page
from ansible_collections.homeiq.deploy.plugins.module_utils._probe import redact_url


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            wait_for=dict(type="str"),
            timeout=dict(type="float", default=30),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    started = time.monotonic()
    try:
        result = check_page(params["url"], wait_for=params["wait_for"], timeout=params["timeout"],
                            executable=params["executable"])
    except BrowserError as exc:
        module.fail_json(msg=str(exc), changed=False, ok=False, url=redact_url(params["url"]), console_errors=[], failed_requests=[],
                         element_found=None if not params["wait_for"] else False,
                         elapsed_ms=round((time.monotonic() - started) * 1000.0, 1))
    if not result["ok"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
