"""The demo workflow a new user follows, driven in headless Chromium against the real app, in English and in Chinese.

Upload the demo SFT dataset -> audit it (token lengths with the demo tokenizer, quality checks) -> configurator:
recommendation -> "Apply to a new job" -> adapt the prefilled form to a CPU-sized demo run -> create and start the
SFT job -> watch the loss chart and the log -> pause, resume, completion -> Model surgery: export the checkpoint with
the lowest validation loss, SLERP it with the base model -> Evaluation: base, checkpoint and merge on the demo eval
set, compared. Then a GRPO job (math_verify reward) and a DPO job: created,
started, watched to completion, exported, and both exports compared with the base model on the demo eval set.

Every step saves a screenshot under test-artifacts/e2e/<lang>/NN-<step>.png; in Chinese, every screenshot's page is
also checked for English-only strings of the UI string table.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from e2e.browser import (
    ARTIFACTS,
    by_key,
    choose,
    choose_many,
    click_key,
    english_leftovers,
    english_only_patterns,
    expand,
    fill_key,
    full_screenshot,
    main,
    nav,
    open_app,
    set_language,
    tab,
    text_of_main,
    wait_idle,
)
from playwright.sync_api import Page, expect

from app.i18n import STRINGS, t

TRAINING_TIMEOUT = 420_000  # ms: a demo job takes one to three minutes on a quiet 2-core CPU
TASK_TIMEOUT = 300_000
BASE_MODEL = "demo-qwen2-tiny"
ENGLISH_ONLY = english_only_patterns(STRINGS)


class Tour:
    """The browser session of one language: translated labels, numbered screenshots, and checks on each page."""

    def __init__(self, page: Page, lang: str):
        self.page, self.lang = page, lang
        self.dir = ARTIFACTS / lang
        shutil.rmtree(self.dir, ignore_errors=True)
        self.count = 0
        self.started = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    def t(self, key: str, **values) -> str:
        return t(key, self.lang, **values)

    def pattern(self, key: str, **values) -> re.Pattern:
        """A translated string as a regex; placeholders not given match any text."""
        pieces = re.split(r"(\{[^}]*\})", STRINGS[key][self.lang])
        parts = []
        for piece in pieces:
            name = piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None
            if name is None:
                parts.append(re.escape(piece))
            elif name in values:
                parts.append(re.escape(str(values[name])))
            else:
                parts.append(".+?")
        return re.compile("".join(parts))

    def shot(self, step: str) -> Path:
        """Check the page (no exception, no error box, no English left in Chinese) and save its screenshot."""
        page = self.page
        wait_idle(page)
        expect(main(page).get_by_test_id("stException")).to_have_count(0)
        errors = main(page).get_by_test_id("stAlertContentError")
        assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
        if self.lang == "zh":
            leftovers = english_leftovers(text_of_main(page), ENGLISH_ONLY)
            assert not leftovers, {key: STRINGS[key]["en"] for key in leftovers}
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        full_screenshot(page, path)
        self.timings.append((step, time.monotonic() - self.started))
        return path

    def expect_state(self, *states: str, timeout: float = 60_000) -> None:
        """The job detail's state line shows one of `states`."""
        labels = "|".join(re.escape(self.t(f"state.{s}")) for s in states)
        line = re.compile(rf"{re.escape(self.t('common.state'))}:\s*({labels})\s*·")
        expect(main(self.page).get_by_text(line).first).to_be_visible(timeout=timeout)

    def task_done(self, title: str, timeout: float = TASK_TIMEOUT) -> None:
        """The task panel whose title contains `title` shows up and says the task is done (the page is drawn again
        when the task ends). Panels in other tabs are hidden, so only visible text counts."""
        visible = main(self.page)
        panel_title = visible.get_by_text(self.pattern("task.title")).filter(has_text=title, visible=True)
        expect(panel_title.first).to_be_visible()
        done = visible.get_by_text(self.t("task.done"), exact=True).filter(visible=True)
        expect(done.first).to_be_visible(timeout=timeout)
        wait_idle(self.page)


# -- steps ---------------------------------------------------------------------------------------------------------
def upload_and_audit(tour: Tour, home: Path) -> None:
    page = tour.page
    nav(page, tour.t("nav.datasets"))
    expand(page, tour.t("datasets.upload.header"))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(home / "demo" / "data" / "sft_demo.jsonl"))
    expect(page.get_by_test_id("stFileChipName")).to_have_text("sft_demo.jsonl")
    main(page).get_by_role("button", name=tour.t("datasets.upload.submit")).click()
    # The demo kit registered identical content as demo-sft, so the upload may reuse it; either is fine.
    done = (
        main(page)
        .get_by_text(tour.pattern("datasets.upload.done"))
        .or_(main(page).get_by_text(tour.pattern("datasets.upload.existing")))
    )
    expect(done.first).to_be_visible()
    dataset_id = re.search(r"#(\d+)", done.first.inner_text()).group(1)
    tour.shot("dataset-uploaded")

    choose(page, "ds_open_choice", re.compile(rf"^#{dataset_id} "))
    click_key(page, "ds_open")
    expect(main(page).get_by_role("tab", name=tour.t("datasets.tab.lengths"), exact=True)).to_be_visible()
    tour.shot("dataset-overview")

    tab(page, tour.t("datasets.tab.lengths"))
    choose(page, "ds_tokenizer", re.compile(re.escape(BASE_MODEL)))
    tokens_chart = f"prompt · {tour.t('datasets.unit.tokens')}"
    expect(main(page).get_by_test_id("stPlotlyChart").filter(has_text=tokens_chart)).to_be_visible()
    tour.shot("dataset-token-lengths")

    tab(page, tour.t("datasets.tab.quality"))
    duplicates = main(page).get_by_test_id("stMetric").filter(has_text=tour.t("datasets.check.duplicate_exact"))
    expect(duplicates.get_by_test_id("stMetricValue")).to_have_text(re.compile(r"^\d[\d,]*$"))
    tour.shot("dataset-quality-checks")


def configure_and_apply(tour: Tour) -> None:
    page = tour.page
    nav(page, tour.t("nav.configurator"))
    choose(page, "cfg_model", tour.t("configurator.model.local", name=BASE_MODEL))
    choose(page, "cfg_gpu", "RTX 4090 24GB")
    expect(main(page).get_by_role("heading", name=tour.t("configurator.recommendation"))).to_be_visible()
    tour.shot("configurator-recommendation")
    click_key(page, "cfg_apply")
    expect(main(page).get_by_text(tour.t("jobs.prefilled"))).to_be_visible()
    expect(main(page).get_by_role("combobox", name=tour.t("jobs.field.model"))).to_have_value(BASE_MODEL)
    tour.shot("new-job-prefilled")


def create_demo_job(tour: Tour, algorithm: str, total_steps: int, first: bool = False) -> str:
    """On the New job tab: load the demo spec of `algorithm`, cap its steps, create and start it; return its title."""
    page = tour.page
    if not first:
        nav(page, tour.t("nav.jobs"))
        tab(page, tour.t("jobs.new"))
    expand(page, tour.t("jobs.demo"))
    click_key(page, f"demo_{algorithm}")
    name = main(page).get_by_role("textbox", name=tour.t("jobs.field.name"), exact=True)
    expect(name).to_have_value(f"demo-{algorithm}")
    wait_idle(page)
    expand(page, tour.t("jobs.section.advanced"))
    steps_field = main(page).get_by_role("textbox", name=tour.t("jobs.field.total_steps"), exact=True)
    steps_field.fill(str(total_steps))
    steps_field.press("Enter")
    expect(main(page).get_by_text(tour.pattern("jobs.preview.steps", total=total_steps))).to_be_visible()
    wait_idle(page)
    if algorithm == "grpo":
        click_key(page, "dryrun_button")
        expect(main(page).get_by_text(tour.pattern("jobs.dryrun.result"))).to_be_visible()
    tour.shot(f"{algorithm}-new-job")
    click_key(page, "create_job")
    title = main(page).get_by_role("heading", name=re.compile(rf"^#\d+ demo-{algorithm}$"))
    expect(title).to_be_visible(timeout=120_000)
    tour.expect_state("starting", "running", "completed")
    return title.inner_text()


def watch_until_complete(tour: Tour, algorithm: str, chart_key: str, pause: bool = False) -> None:
    """Job detail: the chart appears and the log grows; optionally pause and resume; wait for completion."""
    page = tour.page
    if pause:  # at once: the trainer pauses at its first step boundary (a demo run is over in seconds when quiet)
        click_key(page, "detail_pause")
        tour.expect_state("pausing", "paused")
        tour.expect_state("paused", timeout=TRAINING_TIMEOUT)
        expect(by_key(page, "detail_resume").get_by_role("button")).to_be_visible()
        tour.shot(f"{algorithm}-job-paused")
        click_key(page, "detail_resume")
        tour.expect_state("starting", "running", "completed")

    chart = main(page).get_by_test_id("stPlotlyChart").filter(has_text=tour.t(chart_key))
    expect(chart.first).to_be_visible(timeout=TRAINING_TIMEOUT)
    tour.shot(f"{algorithm}-job-running")

    tab(page, tour.t("jobs.tab.logs"))
    log = main(page).get_by_test_id("stHtml").last
    expect(log).not_to_be_empty()
    if algorithm == "sft":  # the live log shows verl's step lines (the page polls the run's files every 3 s)
        expect(log).to_contain_text("step:", timeout=TRAINING_TIMEOUT)
    wait_idle(page)
    tour.shot(f"{algorithm}-job-log")
    tab(page, tour.t("jobs.tab.charts"))

    tour.expect_state("completed", timeout=TRAINING_TIMEOUT)
    expect(by_key(page, "detail_delete").get_by_role("button")).to_be_visible()
    expect(chart.first).to_be_visible()
    tour.shot(f"{algorithm}-job-completed")
    if algorithm == "sft":  # the other views of a finished job
        for name in ("system", "gradients", "checkpoints", "attempts", "config"):
            tab(page, tour.t(f"jobs.tab.{name}"))
            tour.shot(f"sft-job-{name}")
        tab(page, tour.t("jobs.tab.charts"))
    if algorithm == "grpo":
        tab(page, tour.t("jobs.tab.rollouts"))
        expect(main(page).get_by_text(tour.pattern("monitor.rollouts.count"))).to_be_visible()
        tour.shot("grpo-rollouts")
        tab(page, tour.t("jobs.tab.charts"))


def export_checkpoint(tour: Tour, job_title: str, strategy: str) -> str:
    """Model surgery, Checkpoints tab: pick the job's checkpoint by `strategy` and export it; return the model name."""
    page = tour.page
    nav(page, tour.t("nav.surgery"))
    tab(page, tour.t("surgery.tab.checkpoints"))
    choose(page, "ckpt_job", re.compile(rf"^{re.escape(job_title)} \("))
    page.get_by_test_id("stRadio").get_by_text(tour.t(f"surgery.strategy.{strategy}"), exact=True).click()
    reason = {"lowest_val_loss": "lowest", "highest_reward": "highest"}.get(strategy, strategy)
    expect(main(page).get_by_text(tour.pattern(f"surgery.ckpt.reason.{reason}"))).to_be_visible()
    wait_idle(page)
    name = by_key(page, "ckpt_export_name").locator("input").input_value()
    tour.shot(f"{job_title.split()[1]}-checkpoint-picked")
    click_key(page, "ckpt_export")
    tour.task_done(name)
    tour.shot(f"{job_title.split()[1]}-checkpoint-exported")
    return name


def merge_slerp(tour: Tour, exported: str) -> str:
    page = tour.page
    tab(page, tour.t("surgery.tab.merge"))
    expect(by_key(page, "merge_method").get_by_role("combobox")).to_have_value(tour.t("surgery.method.slerp"))
    choose_many(page, "merge_registered", [re.compile(rf"^{BASE_MODEL} · "), re.compile(rf"^{exported} · ")])
    expect(main(page).get_by_text(tour.t("surgery.compatible"))).to_be_visible()
    merged = by_key(page, "merge_slerp_out").locator("input").input_value()
    tour.shot("merge-slerp-ready")
    click_key(page, "merge_start")
    tour.task_done(merged)
    tour.shot("merge-slerp-done")
    return merged


def evaluate_and_compare(tour: Tour, models: list[str], name: str, other_views: bool = False) -> None:
    """Evaluation, Compare tab: run `models` on the demo eval set as one comparison called `name`, and compare them."""
    page = tour.page
    nav(page, tour.t("nav.evaluation"))
    tab(page, tour.t("evaluation.tab.compare"))
    fill_key(page, "cmp_name", name, enter=False)
    choose(page, "cmp_ds", re.compile(r"demo-eval"))
    choose_many(page, "cmp_models", models)
    fill_key(page, "cmp_max", 8, enter=False)  # short answers: a quick generation
    fill_key(page, "cmp_temp", 0, enter=False)  # greedy: the comparison does not depend on sampling luck
    tour.shot(f"{name}-form")
    main(page).get_by_role("button", name=tour.t("evaluation.compare.start")).click()
    tour.task_done(name)
    runs = [re.compile(re.escape(f"{name} ") + r"\d+ " + re.escape(model)) for model in models]  # this comparison's
    choose_many(page, "cmp_runs", runs)
    expect(main(page).get_by_text(tour.pattern("evaluation.compare.items"))).to_be_visible()
    expect(main(page).get_by_role("heading", name=tour.pattern("evaluation.compare.versus_first"))).to_be_visible()
    tour.shot(name)
    if not other_views:
        return

    for view in ("sets", "new", "runs"):
        tab(page, tour.t(f"evaluation.tab.{view}"))
        tour.shot(f"evaluation-{view}")
    choose(page, "runs_open", runs[-1])
    click_key(page, "runs_open_button")
    expect(main(page).get_by_role("heading", name=tour.t("evaluation.detail.overall"))).to_be_visible()
    tour.shot("evaluation-run-detail")
    click_key(page, "eval_back")
    expect(main(page).get_by_role("tab", name=tour.t("evaluation.tab.runs"), exact=True)).to_be_visible()


def remaining_views(tour: Tour) -> None:
    """The views the workflow did not pass through: surgery's averaging and LoRA tabs, and Settings."""
    page = tour.page
    nav(page, tour.t("nav.surgery"))
    for name in ("average", "lora"):
        tab(page, tour.t(f"surgery.tab.{name}"))
        tour.shot(f"surgery-{name}")
    nav(page, tour.t("nav.settings"))
    expect(main(page).get_by_role("heading", name=tour.t("settings.models.header"), exact=True)).to_be_visible()
    tour.shot("settings")


# -- the test ------------------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demo_workflow(app, page, lang):
    tour = Tour(page, lang)
    open_app(page, app.url)
    if lang == "en":  # a fresh workspace opens in Chinese; an English-speaking user switches first
        set_language(page, "English", tour.t("nav.jobs"))
    expect(main(page).get_by_role("heading", name=tour.t("jobs.title"))).to_be_visible()
    tour.shot("start")

    upload_and_audit(tour, app.home)
    configure_and_apply(tour)

    sft = create_demo_job(tour, "sft", total_steps=20, first=True)
    watch_until_complete(tour, "sft", "monitor.chart.loss", pause=True)
    exported = export_checkpoint(tour, sft, "lowest_val_loss")
    merged = merge_slerp(tour, exported)
    evaluate_and_compare(tour, [BASE_MODEL, exported, merged], "sft-comparison", other_views=True)

    grpo = create_demo_job(tour, "grpo", total_steps=3)
    watch_until_complete(tour, "grpo", "monitor.chart.reward")
    grpo_exported = export_checkpoint(tour, grpo, "highest_reward")

    dpo = create_demo_job(tour, "dpo", total_steps=3)
    watch_until_complete(tour, "dpo", "monitor.chart.loss")
    dpo_exported = export_checkpoint(tour, dpo, "last")
    evaluate_and_compare(tour, [BASE_MODEL, grpo_exported, dpo_exported], "rl-comparison")

    remaining_views(tour)
    nav(page, tour.t("nav.jobs"))
    table = main(page).get_by_test_id("stDataFrame")
    expect(table).to_be_visible()
    tour.shot("jobs-list")
    print(f"\n[{lang}] " + ", ".join(f"{step} {seconds:.0f}s" for step, seconds in tour.timings))
