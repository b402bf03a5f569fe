"""The dashboard in a real browser (headless Chromium through Selenium) against a real collector and a real agent.

Logs in through the page, watches a running campaign's progress move without reloading, opens a profiled
result's panel, and saves screenshots to ``$LATBENCH_TEST_ARTIFACTS`` (default ``tests/artifacts/``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from latbench import resultview
from latbench.catalog import PredictorAcquirer
from latbench.client import CollectorClient
from latbench.protocol import CampaignCreate, MeasurementSettings
from latbench.stability import words as flag_words
from tests.support.adaptive import PLAN, adaptive_device, latency, lease, next_jobs
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, Agent, Collector
from tests.support.profiled import push_profiled
from tests.support.served import ADMIN_TOKEN as SERVED_ADMIN_TOKEN
from tests.support.served import ARCHS, Clock, Served, extreme_campaign, failure, measurement

pytestmark = pytest.mark.slow  # headless Chromium, a real collector and agent

FAST = MeasurementSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)
ARTIFACTS_ENV = "LATBENCH_TEST_ARTIFACTS"
SAMPLES = 30


def artifacts_dir() -> Path:
    path = Path(os.environ.get(ARTIFACTS_ENV) or Path(__file__).resolve().parents[1] / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver are missing: run bash scripts/test-deps.sh"
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1900",
                "--disable-gpu", "--no-first-run"):  # fmt: skip
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def collector(tmp_path: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'collector.sqlite'}"
    c = Collector(db, tmp_path / "collector", free_port(), lease_ttl_s=4, artifacts=artifact_cache).start()
    yield c
    c.stop()


def visible(browser: WebDriver, css: str) -> bool:
    return any(e.is_displayed() for e in browser.find_elements(By.CSS_SELECTOR, css))


def text_of(browser: WebDriver, css: str) -> str | None:
    """The text of the first element matching ``css`` now (the page re-renders on every poll)."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def attribute_of(browser: WebDriver, css: str, name: str) -> str | None:
    """An attribute of the first element matching ``css`` now (``None`` if a poll redrew it meanwhile)."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return found[0].get_attribute(name) if found else None
    except StaleElementReferenceException:
        return None


def wait(browser: WebDriver, timeout_s: float, condition, what: str):
    return WebDriverWait(browser, timeout_s, poll_frequency=0.2).until(condition, f"timed out waiting for {what}")


def log_in(browser: WebDriver, token: str) -> None:
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def test_the_dashboard_shows_devices_and_a_campaign_moving(collector: Collector, browser: WebDriver, tmp_path: Path):
    with CollectorClient(collector.url, ADMIN_TOKEN) as client:
        enrollment = client.create_enrollment_token("dashboard").token
        spec = CampaignCreate(space="nb201", samples=SAMPLES, seed=7, runtime="onnxruntime", name="dashboard-test",
                              settings=FAST)  # fmt: skip
        campaign = client.create_campaign(spec)
    agent = Agent(collector, enrollment, "dash-agent", tmp_path / "agent", "--max-jobs", "1")
    try:
        for path in ("/v1/admin/campaigns/{c}/latency-histogram", "/v1/admin/campaigns/{c}/card", "/v1/admin/datasets"):
            assert httpx.get(collector.url + path.format(c=campaign), timeout=10).status_code == 401, path
        watch(browser, collector, campaign)
    finally:
        assert agent.stop() == 0, agent.log.read_text()[-2000:]


def watch(browser: WebDriver, collector: Collector, campaign: str) -> None:
    browser.get(collector.url + "/")
    assert browser.title == "latbench collector"
    assert visible(browser, "#login") and not visible(browser, "#dashboard")
    log_in(browser, "lb_admin_not-the-token")
    wait(browser, 10, lambda b: visible(b, "#login-error"), "the login error")
    assert "refused this token" in browser.find_element(By.ID, "login-error").text
    assert browser.execute_script("return sessionStorage.getItem('latbench.adminToken')") is None
    assert not visible(browser, "#dashboard")

    log_in(browser, ADMIN_TOKEN)
    wait(browser, 10, lambda b: visible(b, "#dashboard"), "the dashboard")
    assert browser.execute_script("return sessionStorage.getItem('latbench.adminToken')") == ADMIN_TOKEN
    browser.execute_script("window.sameDocument = true")  # gone if the page ever reloads
    wait(browser, 10, lambda b: visible(b, f'.campaign[data-campaign="{campaign}"]'), "the campaign")

    wait(browser, 60, lambda b: text_of(b, "#devices tbody tr.online .status") == "online", "an online device")
    device = wait(browser, 10, lambda b: attribute_of(b, "#devices tbody tr", "data-device"), "the device's id")
    row = wait(browser, 10, lambda b: text_of(b, f'#devices tr[data-device="{device}"]'), "the device's row")
    assert "onnxruntime" in row and "dash-agent" in row

    done = f'.campaign[data-campaign="{campaign}"] tr[data-device="{device}"] .done-count'
    first = int(wait(browser, 60, lambda b: text_of(b, done) not in (None, "0") and text_of(b, done), "a result"))
    assert first < SAMPLES, "the campaign finished before the page saw it running"
    wait(browser, 60, lambda b: int(text_of(b, done) or 0) > first, "the done count to increase")
    assert browser.execute_script("return window.sameDocument") is True

    panel = f'#charts .device-charts[data-device="{device}"]'
    wait(browser, 30, lambda b: b.find_elements(By.CSS_SELECTOR, f"{panel} .histogram svg rect"), "a histogram")
    wait(browser, 30, lambda b: "no predictor for this device" in (text_of(b, f"{panel} .no-predictor") or ""),
         "the panel to say the device has no predictor")  # fmt: skip

    # a busy machine flags every result unstable, and a dataset is then not built: the page says why instead
    def card_or_why(b: WebDriver) -> bool:
        return visible(b, "#campaign-card .dataset-card") or "results are unstable" in (
            text_of(b, "#campaign-card p") or ""
        )

    wait(browser, 30, card_or_why, "the campaign's dataset card, or why its unstable results make none")
    wait(browser, 30, lambda b: visible(b, '#datasets [data-dataset="help-nb201"]'), "the built-in datasets")
    browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 140)
    browser.save_screenshot(str(artifacts_dir() / "dashboard.png"))


def test_latencies_a_few_ulps_apart_or_near_the_largest_float_render(
    browser: WebDriver, tmp_path: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    """Once a tick loop never ended here (adding a step too small to move a number near the largest float)."""
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock()) as collector:
        extreme_campaign(collector)
        browser.set_script_timeout(10)
        browser.get(collector.url + "/")
        log_in(browser, SERVED_ADMIN_TOKEN)
        for device in ("ulps", "huge"):
            bars = f'#charts .device-charts[data-device="{device}"] .histogram svg rect'
            wait(browser, 30, lambda b, bars=bars: b.find_elements(By.CSS_SELECTOR, bars), f"the histogram of {device}")
        assert browser.execute_async_script("setTimeout(() => arguments[0](true), 0)") is True, "the page hangs"
        ticks = browser.find_elements(By.CSS_SELECTOR, '#charts .device-charts[data-device="huge"] .axis text')
        assert any("e+308" in (t.get_attribute("textContent") or "") for t in ticks)


def click(browser: WebDriver, css: str, what: str) -> None:
    """Click the element ``css`` once it is there, again if a poll redrew it meanwhile."""

    def clicked(b: WebDriver) -> bool:
        try:
            found = b.find_elements(By.CSS_SELECTOR, css)
            if found and found[0].is_displayed():
                found[0].click()
                return True
        except StaleElementReferenceException:
            pass
        return False

    wait(browser, 30, clicked, what)


def test_a_result_panel_shows_the_top_operator_types_results_show_prints(
    browser: WebDriver, tmp_path: Path, artifact_cache: Path, conv_model: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock()) as collector:
        collector.campaign(ARCHS[:2], name="profiled")
        agent = collector.agent("agent-1", device="bench-1")
        first, second = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
        profiled = push_profiled(agent, first, conv_model)
        plain = measurement(second, median_ms=50.0, stable=False, flags=["high_cv", "still_busy"])
        assert agent.post("/results", json={"results": [plain]}).status_code == 200
        with CollectorClient(collector.url, SERVED_ADMIN_TOKEN) as client:
            shown = resultview.from_collector(client, profiled)  # what `latbench results show ID` prints
        title, rows = shown.op_table(10) or ("", [])

        browser.get(collector.url + "/")
        log_in(browser, SERVED_ADMIN_TOKEN)
        click(browser, f'#result-lists [data-list="slowest"] tr[data-result="{profiled}"]', "the profiled result")
        panel = f'#result-panel .result-details[data-result="{profiled}"]'
        wait(browser, 30, lambda b: visible(b, f"{panel} .op-table tbody tr"), "the operator table")
        assert browser.find_element(By.CSS_SELECTOR, f"{panel} .op-table figcaption").text == title
        cells = [tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td"))
                 for tr in browser.find_elements(By.CSS_SELECTOR, f"{panel} .op-table tbody tr")]  # fmt: skip
        assert cells == rows and rows[0][0] in {t.op for t in shown.op_types()}
        assert text_of(browser, f'{panel} [data-figure="median"] dd') == f"{shown.figures()['latency_ms']:.3f} ms"
        assert text_of(browser, f'{panel} [data-figure="load"] dd') == f"{shown.figures()['load_ms']:.3f} ms"
        words = flag_words(shown.row)  # a busy machine may have flagged the real measurement
        stability = f"unstable: {'; '.join(words)}" if shown.row["stable"] is False else "; ".join(["stable", *words])
        assert text_of(browser, f'{panel} [data-figure="stability"] dd') == stability
        browser.set_window_size(1300, browser.execute_script("return document.body.scrollHeight") + 140)
        browser.save_screenshot(str(artifacts_dir() / "dashboard-result.png"))

        click(browser, f'#result-lists [data-list="slowest"] tr[data-result="{plain["result_id"]}"]', "the other one")
        panel = f'#result-panel .result-details[data-result="{plain["result_id"]}"]'
        wait(browser, 30, lambda b: visible(b, f"{panel} .no-profile"), "the panel of the result without a profile")
        assert text_of(browser, f"{panel} .no-profile") == "no profile (measure with --profile)"
        assert text_of(browser, f'{panel} [data-figure="stability"] dd') == (
            "unstable: high variation between runs; waited the full --wait-idle time and the machine was still busy"
        )
        assert not browser.find_elements(By.CSS_SELECTOR, f"{panel} .op-table")


def test_an_adaptive_campaign_shows_each_devices_learning_curve_as_the_status_says(
    browser: WebDriver, tmp_path: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock(), acquirer=PredictorAcquirer(),
                models_dir=tmp_path / "models") as collector:  # fmt: skip
        campaign = collector.campaign(ARCHS, adaptive=PLAN)
        agent = collector.agent("agent-1", device="pi-1")
        first = lease(agent)
        assert agent.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in first]})
        second = next_jobs(agent, PLAN["batch"])
        assert agent.post("/results", json={"results": [measurement(j, latency(j["arch"], 0.05)) for j in second]})
        device = adaptive_device(collector, campaign, "pi-1")
        assert device["stop"] == "budget" and device["caveat"]
        checks = [0] + [p["checks"] for p in device["curve"]]  # labelled where check results came in
        curve = ", ".join(f"{p['results']} → {p['srcc']:.3f} ± {p['srcc_std']:.3f}"
                          + (f" ({p['checks']} checks)" if p["checks"] > checks[i] else "")
                          for i, p in enumerate(device["curve"]))  # fmt: skip
        expected = f"pi-1 stopped (budget): {curve} · model {device['model']} · {device['caveat']}"

        browser.get(collector.url + "/")
        log_in(browser, SERVED_ADMIN_TOKEN)
        item = 'li.learning-curve[data-device="pi-1"]'
        wait(browser, 30, lambda b: text_of(b, item) == expected, f"the learning curve {expected!r}")
        assert text_of(browser, f"{item} .caveat") == f"· {device['caveat']}"
        assert text_of(browser, ".adaptive p.muted") == (
            f"adaptive: target SRCC {PLAN['target_srcc']}, budget {PLAN['budget']}, batches of {PLAN['batch']}"
        )


def test_a_campaign_shows_why_its_failed_jobs_failed(
    browser: WebDriver, tmp_path: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LATBENCH_HOME", str(tmp_path / "home"))
    with Served(f"sqlite:///{tmp_path / 'collector.sqlite'}", artifact_cache, Clock()) as collector:
        campaign = collector.campaign(ARCHS[:2], name="refused")
        agent = collector.agent("agent-1", device="phone-1")
        first, second = agent.post("/leases", json={"max_jobs": 2}).json()["jobs"]
        refusal = "profiling not supported by runtime tflite on a remote device <b>"  # shown as text, not markup
        refused = {**failure(first, refusal), "final": True}
        assert agent.post("/results", json={"results": [refused, measurement(second)]}).status_code == 200

        browser.get(collector.url + "/")
        log_in(browser, SERVED_ADMIN_TOKEN)
        item = f'.campaign[data-campaign="{campaign}"] li.failure[data-device="phone-1"]'
        expected = f"phone-1: 1 job failed: {refusal}"
        wait(browser, 30, lambda b: text_of(b, item) == expected, f"the failure {expected!r}")
        assert text_of(browser, f'.campaign[data-campaign="{campaign}"] tr[data-device="phone-1"] .failed-count') == "1"
