"""Drive the web page in headless Chromium (Debian's chromium through Playwright).

Used by the page test with a tiny model, and on its own to take the screenshot in docs/:

    python tests/page_driver.py --model default -o docs/serve_page.png
"""

import argparse
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# As root in a closed network: no sandbox, and none of Chromium's background connections; a fake
# microphone (a beeping test signal) that the page may use without asking.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@contextmanager
def serving(app) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def open_page(url: str) -> Iterator[tuple["Page", list[str]]]:
    """The page at `url` in headless Chromium, its voices listed; yields it with the script errors it raises."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 1100})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#voice option').length > 0")
        try:
            yield page, errors
        finally:
            browser.close()


def clone_in_browser(url: str, prompt: Path | None, prompt_text: str, text: str, screenshot: Path | None = None,
                     stream: bool = True, languages: tuple[str, str] | None = None) -> dict:
    """Upload `prompt` (or, without one, record 4 s from the microphone), synthesise `text`, wait for playable audio.

    With `stream` the page plays the audio as it arrives; with `languages` (the text's, the
    prompt's) they are chosen in the page's menus. Returns what the page shows, and when (ms
    after the click) the first audio was scheduled and the stream ended.
    """
    with open_page(url) as (page, errors):
        menus = page.eval_on_selector_all("#language option", "options => options.map(o => o.value)")
        if languages is not None:
            page.select_option("#language", languages[0])
            page.select_option("#prompt-language", languages[1])
        if prompt is None:
            page.click("#record")
            page.wait_for_timeout(4000)
            page.click("#record")
            page.wait_for_selector("#recorded:has-text('recorded')", timeout=10_000)
        else:
            page.check("input[value=upload]")
            page.set_input_files("#file", str(prompt))
        page.fill("#prompt-text", prompt_text)
        page.fill("#text", text)
        page.fill("#seed", "1")
        page.set_checked("#stream", stream)
        page.click("#synthesize")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        duration = page.evaluate("""() => new Promise((resolve, reject) => {
            const audio = document.getElementById('audio');
            const done = () => resolve(audio.duration);
            if (audio.readyState >= 1) done(); else { audio.onloadedmetadata = done; audio.onerror = () => reject('unplayable'); }
        })""")
        shown = {"status": page.inner_text("#status"), "duration": duration, "errors": errors,
                 "download": page.get_attribute("#download", "href"), "voices": page.locator("#voice option").count(),
                 "first_audio_ms": page.evaluate("window.valleFirstAudio ?? null"),
                 "stream_end_ms": page.evaluate("window.valleStreamEnd ?? null"),
                 "language_menus": menus, "languages_shown": page.is_visible("#languages")}
        if screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    return shown


def check_and_save_in_browser(url: str, prompt: Path, name: str) -> dict:
    """Choose `prompt` for upload, wait for the page's check of it, then save it as a voice called `name`.

    Returns what the page shows: the first voice's full name before anything is chosen, the
    check's text and finding codes, the status after saving, and the saved voice's name as shown.
    """
    with open_page(url) as (page, errors):
        first_voice = page.inner_text("#voice-info")
        page.set_input_files("#file", str(prompt))
        page.wait_for_selector("#prompt-check:has-text('Recording checked')", timeout=60_000)
        shown = {"first_voice": first_voice, "check": page.inner_text("#prompt-check"), "errors": errors,
                 "codes": page.eval_on_selector_all("#prompt-check li", "items => items.map(i => i.dataset.code)"),
                 "suggested_name": page.input_value("#voice-name")}
        page.fill("#voice-name", name)
        page.click("#save-voice")
        page.wait_for_selector("#status:has-text('Saved the voice')", timeout=60_000)
        shown.update(status=page.inner_text("#status"), voice_info=page.inner_text("#voice-info"),
                     selected=page.eval_on_selector("#voice", "s => s.options[s.selectedIndex].text"))
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--prompt", default="fl001", help="a bundled prompt's name or a recording")
    parser.add_argument("--text", default="Voice cloning in the browser, from three seconds of speech.")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/serve_page.png"))
    args = parser.parse_args()
    import tempfile

    from valle.infer.bundled import resolve_prompt
    from valle.serve import ServeConfig, create_app

    prompt, prompt_text = resolve_prompt(args.prompt, None)
    with tempfile.TemporaryDirectory() as data, serving(create_app(ServeConfig(model=args.model, data_dir=Path(data)))) as url:
        print(clone_in_browser(url, prompt, prompt_text or "", args.text, args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
