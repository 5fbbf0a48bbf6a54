#!/usr/bin/env python3
"""The dashboard in a real browser (Debian's chromium, headless, driven by
python3-selenium and chromium-driver) while task_master runs a job with two
workers: both workers appear, the done count moves without a reload, a
killed worker is shown as gone and its tasks come back. Saves screenshots
in the build folder (dashboard.png, dashboard-phone.png): look at them.

Usage: dashboard_browser_test.py BUILD_DIR   (ctest runs it; LABELS browser)"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_util import start_master, start_worker, task_file, wait_until  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("TASKQ_BUILD", "build")


def browser(width, height):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.tasks = task_file([f"sleep {20 + (i * 7) % 30}" for i in range(500)])
        # The job waits for both workers, which start once the page is open.
        self.master, self.port, self.url = start_master(BUILD, "127.0.0.1:0", self.tasks,
                                                        ["--workers", "2", "--serve"])
        self.workers = []
        self.driver = browser(1920, 1080)  # a projector

    def tearDown(self):
        self.driver.quit()
        for w in self.workers:
            w.stop()
        self.master.stop(signal.SIGINT)
        os.unlink(self.tasks)

    # Read in one script each: the page redraws several times a second, so an
    # element found in one call may be gone by the next.
    def text(self, css):
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null", css)

    def texts(self, css):
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)

    def state(self, worker):
        return self.driver.execute_script(
            "const r = document.querySelector(`tr[data-worker='${arguments[0]}']`);"
            "return r ? r.dataset.state : null", worker)

    def test_the_class_sees_the_tasks_flow(self):
        d = self.driver
        d.get(self.url + "?big=1")
        wait_until("the page's live stream", lambda: self.text("#conn") == "live", timeout=20)
        self.workers = [start_worker(BUILD, self.port, "ana-laptop"),
                        start_worker(BUILD, self.port, "ben-desktop")]
        wait_until("both workers on the page",
                   lambda: self.state("ana-laptop") == "live" and self.state("ben-desktop") == "live",
                   timeout=20)
        wait_until("tasks done", lambda: int(self.text("#done").replace(",", "")) > 0, timeout=20)
        page = d.execute_script("return performance.timeOrigin")
        first = int(self.text("#done").replace(",", ""))
        wait_until("the done count to move", lambda: int(self.text("#done").replace(",", "")) > first)
        wait_until("task cards of both workers",
                   lambda: {"→ ana-laptop", "→ ben-desktop"} <= set(self.texts(".ev.done .who")))
        os.makedirs(BUILD, exist_ok=True)
        d.save_screenshot(os.path.join(BUILD, "dashboard.png"))
        # Kill ben while it runs tasks: the master presumes it dead and its
        # tasks go back to the queue, and the page says so.
        self.workers[1].p.send_signal(signal.SIGKILL)
        wait_until("ben shown as gone", lambda: self.state("ben-desktop") in ("dead", "left"))
        wait_until("ben's tasks coming back",
                   lambda: self.texts(".ev.requeued"), timeout=20)
        self.assertEqual(self.state("ana-laptop"), "live")
        self.assertEqual(d.execute_script("return performance.timeOrigin"), page, "the page reloaded")
        d.save_screenshot(os.path.join(BUILD, "dashboard-killed.png"))
        # The same page on a phone.
        d.set_window_size(420, 900)
        seq = int(d.execute_script("return document.body.dataset.seq"))
        wait_until("a redraw at the phone's size",
                   lambda: int(d.execute_script("return document.body.dataset.seq")) > seq)
        d.save_screenshot(os.path.join(BUILD, "dashboard-phone.png"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
