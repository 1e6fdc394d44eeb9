"""The reference front end in a real browser (Chromium + Playwright), end to end on the local stack.

Every screen and state is checked with axe-core for WCAG 2.1 A/AA violations (zero allowed) and
photographed into docs/front-end/. The main flow is driven with the keyboard alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import WCAG_TAGS, WebStack
from tests.fixtures.paths import FACES

pytestmark = pytest.mark.browser

ENROLL_TIMEOUT_MS = 60_000


# --- helpers ------------------------------------------------------------------------------------

def check_axe(page: Any, axe_source: str, axe_log: list[dict[str, Any]], state: str) -> None:
    """Runs axe-core on the page as it is now; fails on any WCAG 2.1 A/AA violation."""
    # Contrast is judged on the settled screen, not half-way through its fade-in.
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)  # DevTools evaluation: not subject to the page's CSP, which stays on
    result = page.evaluate("""async (tags) => {
        const r = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
        return { violations: r.violations.map(v => ({ id: v.id, impact: v.impact,
                   nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5) })), passes: r.passes.length };
    }""", WCAG_TAGS)
    axe_log.append({"state": state, "violations": len(result["violations"]), "rulesPassed": result["passes"]})
    assert result["violations"] == [], f"axe WCAG 2.1 A/AA violations on '{state}': {result['violations']}"


def shot(page: Any, screenshots: Path, name: str, *, mask: list[str] | None = None) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True, animations="disabled",
                    mask=[page.locator(m) for m in (mask or [])], mask_color="#d9d9d9")


def visible_screen(page: Any) -> str:
    return str(page.evaluate("() => document.querySelector('[data-screen]:not([hidden])')?.id || ''"))


def wait_screen(page: Any, screen: str, *, timeout: int = 15_000) -> None:
    page.wait_for_selector(f"#screen-{screen}:not([hidden])", timeout=timeout)


def assert_focus_on_heading(page: Any, screen: str) -> None:
    page.wait_for_function(f"() => document.activeElement === document.querySelector('#screen-{screen} h1')",
                           timeout=5_000)


def tab_to(page: Any, selector: str, *, limit: int = 60) -> None:
    """Presses Tab until the element has focus, checking on the way that focus is always visible."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) }; }""")
            assert ring["style"] != "none" and ring["width"] >= 2, f"focus not visible on {selector}: {ring}"
            return
    raise AssertionError(f"Tab never reached {selector}")


def press_on(page: Any, selector: str, key: str = "Enter") -> None:
    tab_to(page, selector)
    page.keyboard.press(key)


def sign_in_with_keyboard(page: Any, user_index: int = 0, *, mfa: bool = True) -> None:
    press_on(page, "#sign-in")
    page.wait_for_url(re.compile(r"/\.auth/login/aad"))
    tab_to(page, "input[name=user]:checked")
    for _ in range(user_index):
        page.keyboard.press("ArrowDown")
    if not mfa:
        tab_to(page, "input[name=mfa]:checked")
        page.keyboard.press("ArrowDown")
    press_on(page, "button[type=submit]")
    page.wait_for_url(re.compile(r"/api/web/"))


def sign_in(page: Any, web: WebStack, user: str, *, query: str = "", mfa: bool = True) -> None:
    page.goto(web.url + query)
    wait_screen(page, "signin")
    page.click("#sign-in")
    page.check(f"input[name=user][value={user}]")
    page.check(f"input[name=mfa][value={'yes' if mfa else 'no'}]")
    page.click("button[type=submit]")
    page.wait_for_selector("#who:not([hidden])")


def consent_without_keeping_photos(page: Any) -> None:
    """From the about screen: accept the terms, decline keeping the photos, reach the capture screen."""
    wait_screen(page, "about")
    page.click("#about-continue")
    page.click("#consent-accept")
    page.check("#keep-no")
    page.click("#keep-continue")
    wait_screen(page, "capture")


def new_page(chromium: Any, **kwargs: Any) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context(**kwargs)
    page = context.new_page()
    problems: list[str] = []
    # A CSP violation or a script error would mean the page does not work as served.
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def on_response(r: Any) -> None:
        signed_out_probe = r.status == 401 and r.url.endswith("/.auth/me")  # how the page learns nobody is signed in
        if r.status >= 400 and not signed_out_probe:
            problems.append(f"{r.status} {r.request.method} {r.url}")
    page.on("response", on_response)
    return context, page, problems


# --- tests --------------------------------------------------------------------------------------

def test_enroll_with_camera_and_withdraw_using_only_the_keyboard(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]], screenshots: Path) -> None:
    context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
    page.goto(web_stack.url)
    wait_screen(page, "signin")
    check_axe(page, axe_source, axe_log, "sign-in")
    shot(page, screenshots, "01-sign-in")
    press_on(page, "#sign-in")
    page.wait_for_url(re.compile(r"/\.auth/login/aad"))
    check_axe(page, axe_source, axe_log, "local sign-in page (stand-in)")
    shot(page, screenshots, "00-local-sign-in")
    tab_to(page, "input[name=user]:checked")  # Ada is preselected; MFA is the default
    press_on(page, "button[type=submit]")

    # 1. What this is
    wait_screen(page, "about")
    assert_focus_on_heading(page, "about")
    assert "Ada Lovelace" in page.inner_text("#who-name")
    assert page.locator("#about-purposes li").count() >= 1
    # For how long: one line per kind of data, from the published retention policy the purge enforces.
    policy = web_stack.app.call("GET", "privacy/policy", user=_oid("ada")).json()
    page.wait_for_function("(n) => document.querySelectorAll('#about-retention li').length === n", arg=len(policy["kinds"]))
    assert policy["version"] in page.inner_text("#about-retention-version")
    check_axe(page, axe_source, axe_log, "1 what this is")
    shot(page, screenshots, "02-what-this-is")
    press_on(page, "#about-continue")

    # 2. Consent: accept and decline equally prominent
    wait_screen(page, "consent")
    assert_focus_on_heading(page, "consent")
    a, d = page.locator("#consent-accept").bounding_box(), page.locator("#consent-decline").bounding_box()
    assert abs(a["width"] - d["width"]) < 2 and abs(a["height"] - d["height"]) < 2
    assert page.eval_on_selector("#consent-accept", "e => e.className") == page.eval_on_selector(
        "#consent-decline", "e => e.className")
    check_axe(page, axe_source, axe_log, "2 consent")
    shot(page, screenshots, "03-consent")
    press_on(page, "#consent-accept")

    # 3. Keep my photos? — no answer preselected; continuing without one is an error, announced
    wait_screen(page, "keep")
    assert_focus_on_heading(page, "keep")
    assert page.locator("input[name=keep]:checked").count() == 0
    press_on(page, "#keep-continue")
    page.wait_for_selector("#keep-error:not(:empty)")
    assert page.evaluate("() => document.activeElement.id") == "keep-yes"
    check_axe(page, axe_source, axe_log, "3 keep photos: answer missing")
    shot(page, screenshots, "04-keep-photos")
    page.keyboard.press("Space")  # focus is on "Yes, keep my photos"
    press_on(page, "#keep-continue")

    # 4. Capture from the fake camera
    wait_screen(page, "capture")
    assert_focus_on_heading(page, "capture")
    check_axe(page, axe_source, axe_log, "4 capture")
    shot(page, screenshots, "05-capture")
    press_on(page, "#camera-start")
    page.wait_for_selector("#camera:not([hidden])")
    page.wait_for_function("() => document.getElementById('video').videoWidth > 0")
    assert page.evaluate("() => document.activeElement.id") == "camera-shoot"
    page.wait_for_function("() => document.getElementById('guidance').textContent.length > 0")
    check_axe(page, axe_source, axe_log, "4 capture: camera on")
    page.keyboard.press("Enter")  # take a photo
    page.wait_for_selector("#photos li img")
    check_axe(page, axe_source, axe_log, "4 capture: one photo taken")
    press_on(page, "#upload")

    # 5. Upload (progress) and 6. result
    wait_screen(page, "upload")
    check_axe(page, axe_source, axe_log, "5 upload")
    wait_screen(page, "result", timeout=ENROLL_TIMEOUT_MS)
    assert_focus_on_heading(page, "result")
    assert page.inner_text("#result-title") == "You are enrolled", page.inner_text("#screen-result")
    assert page.evaluate("() => [...document.querySelectorAll('progress')].every(p => p.value === 100)")
    check_axe(page, axe_source, axe_log, "6 result: enrolled")
    shot(page, screenshots, "07-result-enrolled")
    press_on(page, "#result-mydata")

    # 7. My data, then withdraw with a confirmation that says what will happen
    wait_screen(page, "mydata")
    assert_focus_on_heading(page, "mydata")
    assert "Enrolled" in page.inner_text("#mydata-status")
    # The kept photo, listed from the access bundle, and shown from its short-lived read-only link.
    page.wait_for_selector("#mydata-kept li button")
    assert page.locator("#mydata-kept li").count() == 1
    check_axe(page, axe_source, axe_log, "7 my data: enrolled")
    shot(page, screenshots, "09-my-data", mask=["#mydata-consent", "#mydata-kept"])
    with page.expect_response(lambda r: "/me/photos/" not in r.url and r.request.resource_type == "image"
                              and "sig=" in r.url) as photo_reply:
        press_on(page, "#mydata-kept li button")
    assert photo_reply.value.status == 200
    # Its reply says no-store (the SAS's rscc), so a shared kiosk's browser keeps no copy.
    assert photo_reply.value.headers.get("cache-control") == "no-store", photo_reply.value.headers
    page.wait_for_function("() => document.getElementById('mydata-kept-img').naturalWidth > 0")
    assert page.evaluate("() => document.activeElement.id") == "mydata-kept-close"
    check_axe(page, axe_source, axe_log, "7 my data: own kept photo shown")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.getElementById('mydata-kept-img').hasAttribute('src')") is False
    assert page.evaluate("() => document.activeElement.matches('#mydata-kept li button')")
    press_on(page, "#mydata-withdraw")
    page.wait_for_selector("#withdraw-confirm:not([hidden])")
    assert page.evaluate("() => document.activeElement.id") == "withdraw-title"
    assert "face template is erased" in page.inner_text("#withdraw-confirm")
    check_axe(page, axe_source, axe_log, "7 my data: confirm withdrawal")
    shot(page, screenshots, "10-withdraw-confirm", mask=["#mydata-consent"])
    press_on(page, "#withdraw-yes")
    wait_screen(page, "withdrawn", timeout=30_000)
    assert_focus_on_heading(page, "withdrawn")
    receipt = page.inner_text("#withdrawn-receipt")
    assert re.search(r"receipt number: \S+", receipt), receipt
    page.wait_for_selector("#withdrawn-receipt-detail li")
    assert "Face template: 1 erased" in page.inner_text("#withdrawn-receipt-detail")
    check_axe(page, axe_source, axe_log, "withdrawn: receipt")
    shot(page, screenshots, "11-withdrawn", mask=["#withdrawn-receipt"])
    press_on(page, "#withdrawn-mydata")
    wait_screen(page, "mydata")
    assert "Withdrawn" in page.inner_text("#mydata-status")
    assert receipt.split(": ")[-1] in page.inner_text("#mydata-receipts")
    assert "Kept photos: 1 erased" in page.inner_text("#mydata-receipts")  # the receipt itself, read by its owner
    assert page.locator("#mydata-kept li").count() == 0
    check_axe(page, axe_source, axe_log, "7 my data: withdrawn, receipt")
    assert web_stack.app.call("GET", "enrollment", user=_oid("ada")).json()["status"] == "revoked"
    assert not problems, problems
    context.close()


def test_without_multi_factor_sign_in_consent_is_refused_with_a_clear_message(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]]) -> None:
    context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
    sign_in(page, web_stack, "ada", mfa=False)
    wait_screen(page, "about")
    assert "multi-factor" in page.inner_text("#alert")
    check_axe(page, axe_source, axe_log, "1 what this is: no MFA warning")
    page.click("#about-continue")
    page.click("#consent-accept")
    page.check("#keep-yes")
    page.click("#keep-continue")
    page.wait_for_function("() => document.getElementById('alert').textContent.includes('multi-factor')")
    assert visible_screen(page) == "screen-keep"
    check_axe(page, axe_source, axe_log, "3 keep photos: consent refused without MFA")
    assert web_stack.app.call("GET", "enrollment", user=_oid("ada")).json()["consent"] is None
    problems[:] = [p for p in problems if not p.startswith("403 POST")]  # the refusal under test
    assert not problems, problems
    context.close()


def test_decline_then_a_rejected_photo_shows_its_reasons(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]], screenshots: Path) -> None:
    context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
    sign_in(page, web_stack, "grace")
    wait_screen(page, "about")
    page.click("#about-continue")
    page.click("#consent-decline")
    wait_screen(page, "declined")
    assert_focus_on_heading(page, "declined")
    check_axe(page, axe_source, axe_log, "2 consent declined: the badge alternative")
    shot(page, screenshots, "03b-declined")
    # Declining is recorded (the ledger has it, the status says so), and stored nothing else.
    status = web_stack.app.call("GET", "enrollment", user=_oid("grace")).json()
    assert status["consent"] is None and status["status"] == "declined", status
    ledger = web_stack.app.call("GET", "me", user=_oid("grace")).json()["consentLedger"]
    assert [e["kind"] for e in ledger] == ["decline"], ledger
    # So the page stops asking: coming back shows the choice made, and a way to change it.
    page.reload()
    wait_screen(page, "declined")
    assert page.locator("#declined-recorded").is_visible()
    page.click("#declined-again")
    consent_without_keeping_photos(page)
    page.set_input_files("#file-input", [str(FACES / "nonfaces/1.jpg"), str(FACES / "multi/1.jpg")])
    assert page.locator("#photos li").count() == 2
    page.click("#upload")
    wait_screen(page, "result", timeout=ENROLL_TIMEOUT_MS)
    text = page.inner_text("#result-list")
    assert page.inner_text("#result-title") == "We could not use your photos"
    assert "Photo 1: not used." in text and "Photo 2: not used." in text
    assert "could not find a face" in text and "only you" in text, text
    check_axe(page, axe_source, axe_log, "6 result: photos rejected with reasons")
    shot(page, screenshots, "08-result-rejected")
    assert not problems, problems
    context.close()


def test_kiosk_sign_out_leaves_nothing_of_the_user(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]], screenshots: Path) -> None:
    context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
    events: list[str] = []
    context.expose_binding("__kioskProbe", lambda _source, event: events.append(str(event)))
    # Watches, from outside the app, every camera track handed out and every object URL made.
    context.add_init_script("""
        const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = async (c) => {
            const stream = await gum(c);
            for (const track of stream.getTracks()) {
                window.__kioskProbe('track-open ' + track.id);
                const stop = track.stop.bind(track);
                track.stop = () => { window.__kioskProbe('track-stop ' + track.id); stop(); };
            }
            return stream;
        };
        const create = URL.createObjectURL;
        URL.createObjectURL = (o) => { const u = create(o); window.__kioskProbe('url ' + u); return u; };
    """)
    sign_in(page, web_stack, "alan")
    wait_screen(page, "about")
    page.click("#about-continue")
    page.click("#consent-accept")
    page.check("#keep-yes")
    page.click("#keep-continue")
    wait_screen(page, "capture")
    page.click("#camera-start")
    page.wait_for_function("() => document.getElementById('video').videoWidth > 0")
    page.click("#camera-shoot")
    page.wait_for_selector("#photos li img")
    page.set_input_files("#file-input", str(FACES / "family2-lady/2.jpg"))
    assert page.locator("#photos li").count() == 2
    urls = [e.split(" ", 1)[1] for e in events if e.startswith("url ")]
    assert len(urls) == 2
    page.evaluate("() => { sessionStorage.setItem('probe', '1'); localStorage.setItem('probe', '1'); }")

    page.click("#sign-out")
    page.wait_for_url(re.compile(r"signed-out\.html"))
    page.wait_for_selector("h1:focus")
    opened = {e.split(" ", 1)[1] for e in events if e.startswith("track-open ")}
    stopped = {e.split(" ", 1)[1] for e in events if e.startswith("track-stop ")}
    assert opened and opened <= stopped, events
    left = page.evaluate("""async (urls) => {
        const loads = (u) => new Promise((resolve) => {
            const img = new Image(); img.onload = () => resolve(true); img.onerror = () => resolve(false); img.src = u; });
        const reachable = [];
        for (const u of urls) { if (await loads(u)) reachable.push(u); }  // a revoked object URL no longer loads
        return { reachable, local: localStorage.length, session: sessionStorage.length,
                 caches: (await caches.keys()).length,
                 idb: (await indexedDB.databases()).length,
                 me: (await fetch('/.auth/me', { cache: 'no-store' })).status };
    }""", urls)
    assert left == {"reachable": [], "local": 0, "session": 0, "caches": 0, "idb": 0, "me": 401}, left
    check_axe(page, axe_source, axe_log, "signed out")
    shot(page, screenshots, "12-signed-out")
    # Back does not bring the previous person's screen: the app starts over, signed out.
    page.go_back()
    page.wait_for_load_state()
    if "/api/web/" in page.url and "signed-out" not in page.url:
        wait_screen(page, "signin")
        assert page.inner_text("#who-name") == ""
    assert not problems, problems
    context.close()


def test_layout_reflows_at_320_px_and_200_percent_zoom_and_motion_can_be_reduced(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]], screenshots: Path) -> None:
    # 200% zoom of a 1280x800 window lays the page out in 640x400 CSS px (WCAG 1.4.4, 1.4.10).
    sizes = [((320, 640), "320 px"), ((640, 400), "200% zoom of 1280x800")]
    context, page, problems = new_page(chromium, viewport={"width": 320, "height": 640}, reduced_motion="reduce")
    sign_in(page, web_stack, "katherine")
    # Katherine may have consented in another test: the page then opens on "My data".
    page.wait_for_selector("#screen-mydata:not([hidden]), #screen-about:not([hidden])")

    def check(screen: str) -> None:
        wait_screen(page, screen)
        for (width, height), label in sizes:
            page.set_viewport_size({"width": width, "height": height})
            overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"horizontal scrolling at {label} on {screen}: {overflow}px"
            assert page.evaluate(
                f"() => getComputedStyle(document.getElementById('screen-{screen}')).animationName") == "none"
            check_axe(page, axe_source, axe_log, f"{screen} at {label}")
        page.set_viewport_size({"width": 320, "height": 640})

    if visible_screen(page) == "screen-mydata":
        check("mydata")
        page.click("#mydata-add")
        check("capture")
    else:
        check("about")
        shot(page, screenshots, "13-narrow-320px")
        page.click("#about-continue")
        check("consent")
        page.click("#consent-accept")
        check("keep")
    page.emulate_media(reduced_motion="no-preference")
    page.reload()
    page.wait_for_selector("#who:not([hidden])")
    assert page.evaluate(
        "() => getComputedStyle(document.querySelector('[data-screen]:not([hidden])')).animationName") == "appear"
    assert not problems, problems
    context.close()


def test_an_idle_session_signs_out_by_itself_and_releases_the_camera(
        web_stack: WebStack, chromium: Any, axe_source: str, axe_log: list[dict[str, Any]]) -> None:
    context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
    events: list[str] = []
    context.expose_binding("__kioskProbe", lambda _source, event: events.append(str(event)))
    context.add_init_script("""
        const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        navigator.mediaDevices.getUserMedia = async (c) => {
            const stream = await gum(c);
            for (const track of stream.getTracks()) {
                window.__kioskProbe('track-open ' + track.id);
                const stop = track.stop.bind(track);
                track.stop = () => { window.__kioskProbe('track-stop ' + track.id); stop(); };
            }
            return stream;
        };
    """)
    # The page's clock is the test's: time jumps instead of passing, so a loaded machine cannot
    # sign the person out half-way through the setup, and the test does not wait for real minutes.
    page.clock.install()
    # ?idle= can only shorten the configured timeout (a kiosk operator's setting): 60 s here.
    sign_in(page, web_stack, "katherine", query="?idle=60")
    consent_without_keeping_photos(page)
    page.click("#camera-start")
    page.wait_for_function("() => document.getElementById('video').videoWidth > 0")
    page.clock.fast_forward(29_000)
    assert page.locator("#idle").is_hidden()  # the warning comes 30 s before the end
    page.clock.fast_forward(2_000)
    page.wait_for_selector("#idle:not([hidden])")
    assert page.evaluate("() => document.activeElement.id") == "idle-stay"
    assert "signed out in" in page.inner_text("#idle-body")
    check_axe(page, axe_source, axe_log, "idle warning")
    page.clock.fast_forward(30_000)
    page.wait_for_url(re.compile(r"signed-out\.html"), timeout=15_000)
    opened = {e.split(" ", 1)[1] for e in events if e.startswith("track-open ")}
    stopped = {e.split(" ", 1)[1] for e in events if e.startswith("track-stop ")}
    assert opened and opened <= stopped, events
    assert page.evaluate("async () => (await fetch('/.auth/me')).status") == 401
    assert not problems, problems
    context.close()


def test_an_accepted_photo_is_not_called_unusable_while_the_group_trains(web_stack: WebStack, chromium: Any) -> None:
    """The verdict waits for the training that makes an accepted photo count: until then the status is
    "pending", which the page once showed as "We could not use your photos" (seen on a loaded machine)."""
    face = web_stack.app.face
    default = face.configure()["trainBaseMs"]
    face.configure(trainBaseMs=5000)  # every training now takes 5 s: the photo is accepted long before
    try:
        context, page, problems = new_page(chromium, viewport={"width": 1024, "height": 768})
        sign_in(page, web_stack, "margaret")
        consent_without_keeping_photos(page)
        page.set_input_files("#file-input", str(FACES / "family1-dad/1.jpg"))
        page.click("#upload")
        wait_screen(page, "result", timeout=ENROLL_TIMEOUT_MS)
        assert page.inner_text("#result-title") == "You are enrolled", page.inner_text("#screen-result")
        assert web_stack.app.call("GET", "enrollment", user=_oid("margaret")).json()["status"] == "enrolled"
        assert not problems, problems
        context.close()
    finally:
        face.configure(trainBaseMs=default)


def _oid(user: str) -> str:
    from local.host.easyauth import TEST_USERS

    return next(u.oid for u in TEST_USERS if u.key == user)
