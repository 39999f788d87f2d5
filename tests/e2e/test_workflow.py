"""The demo workflow a new user follows, driven in headless Chromium against the real app, in English and in Chinese.

Upload the demo SFT dataset -> audit it (token lengths with the demo tokenizer, quality checks) -> configurator:
recommendation -> "Apply to a new job": the recommended batch sizes stay in the form, only what this CPU run needs
is changed (name, datasets, no GPU, steps, learning rate) -> create and start the SFT job -> pause (it pauses at a
step boundary), resume (the second attempt continues from that step) -> watch the step count and the log grow, the
loss chart, completion; the run's command carries the recommended batch size -> Model surgery: export the
checkpoint with the lowest validation loss, SLERP it with the base model -> Evaluation: base, checkpoint and merge on
the demo eval set, compared. Then the same for a GRPO job (math_verify reward, checked in the run's config) and a
DPO job: created, paused, resumed, watched to completion, exported; the DPO export is SLERP-merged with the base, and
base, both exports and the merge are compared on the demo eval set.

Every step saves a screenshot under test-artifacts/e2e/<lang>/NN-<step>.png; each page (main area and sidebar) is
checked against the UI string table: no English-only string in the Chinese run, no Chinese-only string in the
English run.
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
    chinese_only_patterns,
    choose,
    choose_in,
    choose_many,
    click_key,
    english_leftovers,
    english_only_patterns,
    expand,
    fill_key,
    full_screenshot,
    main,
    metric_value,
    nav,
    open_app,
    set_language,
    set_number,
    tab,
    text_of_page,
    wait_idle,
)
from playwright.sync_api import Page, expect

from app.i18n import STRINGS, t

TRAINING_TIMEOUT = 420_000  # ms: a demo job takes one to three minutes on a quiet 2-core CPU
TASK_TIMEOUT = 300_000
BASE_MODEL = "demo-qwen2-tiny"
ENGLISH_ONLY = english_only_patterns(STRINGS)
CHINESE_ONLY = chinese_only_patterns(STRINGS)


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
        other = "en" if self.lang == "zh" else "zh"
        leftovers = english_leftovers(text_of_page(page), ENGLISH_ONLY if self.lang == "zh" else CHINESE_ONLY)
        assert not leftovers, {key: STRINGS[key][other] for key in leftovers}
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

    def step(self) -> int | None:
        """The job detail's current step (the "Step" figure), or None before the first one."""
        value = metric_value(self.page, self.t("monitor.progress.step")).split("/")[0].strip()
        return int(value) if value.isdigit() else None

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
def upload_and_audit(tour: Tour, home: Path) -> str:
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
    message = done.first.inner_text()
    dataset_id = re.search(r"#(\d+)", message).group(1)
    dataset_name = re.search(r"#\d+ (\S+?)[:：（( ]", message).group(1)
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
    return dataset_name


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


def create_from_recommendation(tour: Tour, dataset: str, total_steps: int) -> tuple[str, str]:
    """The New job form as "Apply" left it: keep the recommended batch sizes, change only what a CPU demo run needs
    (name, datasets, no GPU on this machine, steps, a demo learning rate); create and start. Returns (title, batch)."""
    page = tour.page
    form = main(page)
    batch = form.get_by_role("spinbutton", name=tour.t("jobs.field.batch_size"), exact=True)
    recommended = batch.input_value()
    name = form.get_by_role("textbox", name=tour.t("jobs.field.name"), exact=True)
    name.fill("demo-sft")
    name.press("Enter")
    wait_idle(page)
    choose_in(page, form.get_by_role("combobox", name=tour.t("jobs.field.dataset")), dataset)
    choose_in(page, form.get_by_role("combobox", name=tour.t("jobs.field.val_dataset")), "demo-sft-val")
    set_number(page, tour.t("jobs.field.gpus_per_node"), 0)  # this machine has no GPU: verl's SFT runs on the CPU
    set_number(page, tour.t("jobs.field.learning_rate"), 0.003)  # the tiny random demo model learns fast at this rate
    expand(page, tour.t("jobs.section.advanced"))
    steps_field = form.get_by_role("textbox", name=tour.t("jobs.field.total_steps"), exact=True)
    steps_field.fill(str(total_steps))
    steps_field.press("Enter")
    wait_idle(page)
    set_number(page, tour.t("jobs.field.save_freq"), total_steps // 2)
    set_number(page, tour.t("jobs.field.test_freq"), total_steps // 2)
    expect(main(page).get_by_text(tour.pattern("jobs.preview.steps", total=total_steps))).to_be_visible()
    expect(batch).to_have_value(recommended)  # the recommendation survived the edits
    tour.shot("sft-new-job")
    click_key(page, "create_job")
    title = main(page).get_by_role("heading", name=re.compile(r"^#\d+ demo-sft$"))
    expect(title).to_be_visible(timeout=120_000)
    tour.expect_state("starting", "running", "completed")
    return title.inner_text(), recommended


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


def watch_until_complete(tour: Tour, algorithm: str, chart_key: str, config_text: tuple[str, ...] = ()) -> None:
    """Job detail: pause at once and resume (the second attempt continues from the paused step), then the step count
    and the log grow, the chart shows, the job completes; the Config tab shows `config_text`."""
    page = tour.page
    # Pause at once: the trainer pauses at its first step boundary (a demo run is over in seconds when quiet).
    click_key(page, "detail_pause")
    tour.expect_state("pausing", "paused")
    tour.expect_state("paused", timeout=TRAINING_TIMEOUT)
    expect(by_key(page, "detail_resume").get_by_role("button")).to_be_visible()
    paused_at = tour.step()
    total = int(metric_value(page, tour.t("monitor.progress.step")).split("/")[1])
    assert paused_at is not None and 1 <= paused_at < total, (paused_at, total)
    tour.shot(f"{algorithm}-job-paused")
    click_key(page, "detail_resume")
    tour.expect_state("starting", "running", "completed")

    seen = {paused_at}
    deadline = time.monotonic() + TRAINING_TIMEOUT / 1000
    completed = re.compile(rf"{re.escape(tour.t('common.state'))}:\s*{re.escape(tour.t('state.completed'))}\s*·")
    while time.monotonic() < deadline:  # the page refreshes itself: watch the step figure move
        step = tour.step()
        if step is not None:
            assert step >= paused_at, f"step {step} after resuming at {paused_at}: the run started over"
            seen.add(step)
        if main(page).get_by_text(completed).count():
            break
        page.wait_for_timeout(500)
    assert len(seen) >= 2 and max(seen) > paused_at, seen

    chart = main(page).get_by_test_id("stPlotlyChart").filter(has_text=tour.t(chart_key))
    expect(chart.first).to_be_visible(timeout=TRAINING_TIMEOUT)
    tour.shot(f"{algorithm}-job-running")

    tab(page, tour.t("jobs.tab.logs"))
    log = main(page).get_by_test_id("stHtml").last
    expect(log).not_to_be_empty()
    if algorithm == "sft":  # the resumed attempt's log goes on from the paused step (verl's step lines)
        expect(log).to_contain_text(f"step:{paused_at + 1} - ", timeout=TRAINING_TIMEOUT)
        assert re.search(r"(^|\s)step:1 - ", log.inner_text()) is None  # the latest attempt did not start over
    wait_idle(page)
    tour.shot(f"{algorithm}-job-log")
    tab(page, tour.t("jobs.tab.charts"))

    tour.expect_state("completed", timeout=TRAINING_TIMEOUT)
    expect(by_key(page, "detail_delete").get_by_role("button")).to_be_visible()
    expect(chart.first).to_be_visible()
    tour.shot(f"{algorithm}-job-completed")
    tab(page, tour.t("jobs.tab.config"))
    for text in config_text:
        expect(main(page).get_by_text(text, exact=False).first).to_be_attached()
    if algorithm == "sft":  # the other views of a finished job
        tour.shot("sft-job-config")
        for name in ("system", "gradients", "checkpoints", "attempts"):
            tab(page, tour.t(f"jobs.tab.{name}"))
            tour.shot(f"sft-job-{name}")
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


def merge_slerp(tour: Tour, exported: str, label: str = "merge-slerp") -> str:
    page = tour.page
    tab(page, tour.t("surgery.tab.merge"))
    expect(by_key(page, "merge_method").get_by_role("combobox")).to_have_value(tour.t("surgery.method.slerp"))
    choose_many(page, "merge_registered", [re.compile(rf"^{BASE_MODEL} · "), re.compile(rf"^{exported} · ")])
    expect(main(page).get_by_text(tour.t("surgery.compatible"))).to_be_visible()
    merged = by_key(page, "merge_slerp_out").locator("input").input_value()
    tour.shot(f"{label}-ready")
    click_key(page, "merge_start")
    tour.task_done(merged)
    tour.shot(f"{label}-done")
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

    dataset = upload_and_audit(tour, app.home)
    configure_and_apply(tour)

    sft, batch = create_from_recommendation(tour, dataset, total_steps=12)
    watch_until_complete(tour, "sft", "monitor.chart.loss", config_text=(f"data.train_batch_size={batch}",))
    exported = export_checkpoint(tour, sft, "lowest_val_loss")
    merged = merge_slerp(tour, exported)
    evaluate_and_compare(tour, [BASE_MODEL, exported, merged], "sft-comparison", other_views=True)

    grpo = create_demo_job(tour, "grpo", total_steps=4)
    watch_until_complete(tour, "grpo", "monitor.chart.reward", config_text=("math_verify",))
    grpo_exported = export_checkpoint(tour, grpo, "highest_reward")

    dpo = create_demo_job(tour, "dpo", total_steps=4)
    watch_until_complete(tour, "dpo", "monitor.chart.loss")
    dpo_exported = export_checkpoint(tour, dpo, "last")
    dpo_merged = merge_slerp(tour, dpo_exported, "dpo-merge-slerp")
    evaluate_and_compare(tour, [BASE_MODEL, grpo_exported, dpo_exported, dpo_merged], "rl-comparison")

    remaining_views(tour)
    nav(page, tour.t("nav.jobs"))
    table = main(page).get_by_test_id("stDataFrame")
    expect(table).to_be_visible()
    tour.shot("jobs-list")
    print(f"\n[{lang}] " + ", ".join(f"{step} {seconds:.0f}s" for step, seconds in tour.timings))
