// The editor page: submit an article, follow its job, read the result.  It uses the public
// HTTP API only (api.js); results are drawn by render.js and glossary.js with textContent.

import { Problem, acceptedInputs, apiKey, followEvents, request, setApiKey } from "./api.js";
import { describeGlossary, glossaryField, glossaryName, loadGlossaries, renderGlossary } from "./glossary.js";
import { addParagraph, markdownOf, renderAlignment, renderDetails, renderSource, renderSummary } from "./render.js";

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const STAGES = {
  queued: "Waiting for a worker",
  started: "Started",
  segment: "Splitting into sentences",
  translate: "Translating",
  summarize: "Summarizing",
  check: "Checking facts",
  done: "Done",
};
// Which field a problem concerns, by its code; the rest are shown under the form.
const FIELD_OF_CODE = [
  [/^unknown_style$/, "style"],
  [/^glossary/, "glossary"],
  [/title/, "title"],
  [/html/, "file"],
  [/url|fetch|page|redirect|host/, "url"],
  [/^(text_|not_german|empty)/, "text"],
];

const state = { jobId: null, result: null, stream: null, html: null, htmlName: null, glossaryNote: null };

// --- the API key ------------------------------------------------------------------------

let keyWaiters = [];

/** Show the key prompt; `problem` is the refusal of a key that was sent (null: none was). */
function askForKey(problem) {
  $("key-panel").hidden = false;
  $("api-key-error").textContent = problem ? `${problem.detail} (code: ${problem.code})` : "";
  $("api-key").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) {
    $("api-key-error").textContent = "Enter the API key you were given.";
    return;
  }
  setApiKey(key);
  $("api-key").value = "";
  $("key-panel").hidden = true;
  const waiters = keyWaiters;
  keyWaiters = [];
  waiters.forEach((resolve) => resolve());
});

/** Run an API call; on 401 ask for a key (once per failure) and try again. */
async function withKey(call) {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof Problem) || error.status !== 401) {
        throw error;
      }
      const sent = apiKey() !== null;
      setApiKey(null);
      await askForKey(sent ? error : null);
    }
  }
}

// --- problems beside their fields ---------------------------------------------------------

function clearErrors() {
  for (const node of document.querySelectorAll("#article-form .error")) {
    node.textContent = "";
  }
  for (const node of document.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
  }
  $("job-error").textContent = "";
}

function languageName(code) {
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

function explain(problem) {
  const body = problem.body;
  if (problem.code === "not_german" && body.detected_language) {
    const share = Math.round((body.german_share || 0) * 100);
    return `The article looks ${languageName(body.detected_language)}, not German (${share} % of its sentences are German).`;
  }
  if (problem.status === 413 && body.limit) {
    const length = body.length ? `${body.length.toLocaleString("en")} characters; ` : "";
    return `The article is too long: ${length}the limit is ${body.limit.toLocaleString("en")} characters.`;
  }
  return problem.detail.charAt(0).toUpperCase() + problem.detail.slice(1);
}

/** Show a refusal beside the field it concerns; `sentAs` is the input sent (text, url, html),
 *  the field for a problem whose code names none (a server that refuses `url` altogether). */
function showProblem(problem, sentAs) {
  const message = `${explain(problem)} (${problem.detail}; code: ${problem.code})`;
  const match = FIELD_OF_CODE.find(([pattern]) => pattern.test(problem.code));
  let field = match ? match[1] : { url: "url", html: "file" }[sentAs] || null;
  if ((field === "url" || field === "glossary") && $(`${field}-field`).hidden) {
    field = null;
  }
  if (field === null) {
    $("form-error").textContent = message;
    return;
  }
  $(`${field}-error`).textContent = message;
  $(field).setAttribute("aria-invalid", "true");
  $(field).focus();
}

// --- styles and inputs ---------------------------------------------------------------------

async function loadStyles() {
  const { body } = await withKey(() => request("GET", "/styles"));
  const select = $("style");
  select.replaceChildren();
  for (const style of body) {
    const option = document.createElement("option");
    option.value = style.name;
    option.textContent = style.name;
    option.dataset.description = style.description;
    select.append(option);
  }
  const standard = body.find((style) => style.name === "standard");
  if (standard) {
    select.value = "standard";
  }
  describeStyle();
}

function describeStyle() {
  const option = $("style").selectedOptions[0];
  $("style-help").textContent = option ? option.dataset.description : "";
}

$("style").addEventListener("change", describeStyle);

/** Show the inputs the server's API document accepts; resolves to what it accepts. */
async function enableOtherInputs() {
  const accepted = await acceptedInputs();
  $("url-field").hidden = !accepted.url;
  if (accepted.html) {
    $("file").accept = ".txt,.html,.htm,text/plain,text/html";
    $("file-help").textContent = "A .txt file fills the text box; an .html file is sent as a web page.";
  }
  return accepted;
}

/** The glossary picker, when the server takes `glossary_id`: default, none, and the caller's. */
async function enableGlossaries(accepted) {
  if (!(await accepted).glossary) {
    return;
  }
  state.glossaryNote = await loadGlossaries($("glossary"), withKey);
  $("glossary-field").hidden = false;
  describeGlossaryChoice();
}

function describeGlossaryChoice() {
  const note = state.glossaryNote ? ` ${state.glossaryNote}` : "";
  $("glossary-help").textContent = describeGlossary($("glossary")) + note;
}

$("glossary").addEventListener("change", describeGlossaryChoice);

$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  state.html = null;
  if (!file) {
    return;
  }
  const content = await file.text();
  if (/\.html?$/i.test(file.name) || file.type === "text/html") {
    state.html = content;
    state.htmlName = file.name;
    $("file-help").textContent = `The web page ${file.name} will be sent; clear the file to send the text box instead.`;
  } else {
    $("text").value = content;
  }
});

// --- submitting and following a job -------------------------------------------------------

function articleBody() {
  const body = {};
  const url = $("url-field").hidden ? "" : $("url").value.trim();
  if (url) {
    body.url = url;
  } else if (state.html !== null) {
    body.html = state.html;
  } else {
    body.text = $("text").value;
  }
  const title = $("title").value.trim();
  if (title) {
    body.title = title;
  }
  if ($("style").value) {
    body.style = $("style").value;
  }
  if (!$("glossary-field").hidden) {
    Object.assign(body, glossaryField($("glossary")));
  }
  return body;
}

$("article-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  $("submit").disabled = true;
  const article = articleBody();
  const sentAs = ["url", "html", "text"].find((name) => name in article);
  try {
    const { status, body } = await withKey(() => request("POST", "/summarize", article));
    remember(body.id);
    if (status === 200) {
      showView(body);
    } else {
      await follow(body.id);
    }
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    showProblem(error, sentAs);
  } finally {
    $("submit").disabled = false;
  }
});

function remember(jobId) {
  state.jobId = jobId;
  const url = new URL(window.location.href);
  url.searchParams.set("job", jobId);
  window.history.replaceState(null, "", url);
}

function showProgress(status, progress) {
  $("job-panel").hidden = false;
  const bar = $("job-progress");
  let text = status === "queued" ? STAGES.queued : STAGES[progress.stage] || progress.stage;
  if (progress.stage === "translate" && progress.total > 0 && !TERMINAL.has(status)) {
    // Only the translation counts sentences; the other stages report one step of one.
    text += `: ${progress.done} of ${progress.total} sentences`;
    bar.max = progress.total;
    bar.value = progress.done;
  } else {
    text += "…";
    bar.removeAttribute("value");
  }
  $("job-status").textContent = text;
}

/** The translation pane, filling in paragraph by paragraph while the job runs; the summary,
 *  the details and the buttons wait for the finished result. */
function showParagraph(paragraph) {
  const results = $("results");
  if (results.dataset.state !== "partial") {
    results.dataset.state = "partial";
    state.result = null;
    $("result-title").hidden = true;
    $("summary").replaceChildren();
    $("summary-flags").textContent = "";
    $("glossary-panel").hidden = true;
    $("source-panel").hidden = true;
    renderAlignment($("alignment"), []);
    results.hidden = false;
  }
  addParagraph($("alignment"), paragraph);
}

function hideResults() {
  $("results").hidden = true;
  delete $("results").dataset.state;
}

async function follow(jobId) {
  if (state.stream) {
    state.stream.abort();
  }
  state.stream = new AbortController();
  hideResults();
  $("cancel").hidden = false;
  showProgress("queued", { stage: "queued", done: 0, total: 0 });
  try {
    const view = await withKey(() =>
      followEvents(
        jobId,
        (event) => showProgress(event.status, event.progress),
        state.stream.signal,
        showParagraph,
      ),
    );
    showView(view);
  } catch (error) {
    if (error.name === "AbortError") {
      return;
    }
    if (!(error instanceof Problem)) {
      throw error;
    }
    $("cancel").hidden = true;
    $("job-error").textContent = `${explain(error)} (code: ${error.code})`;
  }
}

function showView(view) {
  $("job-panel").hidden = false;
  $("cancel").hidden = TERMINAL.has(view.status);
  if (!TERMINAL.has(view.status)) {
    follow(view.id);
    return;
  }
  $("job-progress").max = 1;
  $("job-progress").value = view.status === "succeeded" ? 1 : 0;
  if (view.status === "succeeded") {
    $("job-status").textContent = view.result.cached ? "Done (answered from the cache)." : "Done.";
    showResult(view.result);
  } else if (view.status === "canceled") {
    hideResults();
    $("job-status").textContent = "Canceled.";
  } else {
    hideResults();
    $("job-status").textContent = "Failed.";
    const error = view.error || { detail: "the job failed", code: "failed" };
    $("job-error").textContent = `${error.detail} (code: ${error.code})`;
  }
}

function showResult(result) {
  state.result = result;
  $("result-title").textContent = result.title_en || "";
  $("result-title").hidden = !result.title_en;
  const flagged = renderSummary($("summary"), result);
  $("summary-flags").textContent = flagged
    ? `${flagged} ${flagged === 1 ? "fact" : "facts"} of the summary could not be found in the article (underlined).`
    : "";
  renderAlignment($("alignment"), result.alignment || []);
  renderGlossary($("glossary-panel"), result, (id) => glossaryName($("glossary"), id));
  renderSource($("source-panel"), $("source"), result.source);
  renderDetails($("details"), result);
  delete $("results").dataset.state;
  $("results").hidden = false;
}

$("cancel").addEventListener("click", async () => {
  if (!state.jobId) {
    return;
  }
  $("job-status").textContent = "Canceling…";
  try {
    const { body } = await withKey(() =>
      request("DELETE", `/jobs/${encodeURIComponent(state.jobId)}`),
    );
    // The answer is the job as it stands: canceled at once, even while its worker is still
    // stopping it, so the page need not wait for the event stream to say so.
    if (body && TERMINAL.has(body.status)) {
      state.stream?.abort();
      showView(body);
    }
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    $("job-error").textContent = `${explain(error)} (code: ${error.code})`;
  }
});

// --- copying and downloading --------------------------------------------------------------

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    $("copy-note").textContent = `${what} copied.`;
  } catch (error) {
    $("copy-note").textContent = `The browser did not allow copying (${error.message}).`;
  }
}

$("copy-summary").addEventListener("click", () => copy(state.result.summary, "Summary"));
$("copy-translation").addEventListener("click", () => copy(state.result.translation, "Translation"));
$("download").addEventListener("click", () => {
  const markdown = markdownOf(state.result, $("title").value.trim());
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([markdown], { type: "text/markdown" }));
  link.download = `kurzgefasst-${(state.jobId || "article").slice(0, 12)}.md`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});

// --- start ------------------------------------------------------------------------------------

async function start() {
  try {
    await loadStyles();
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    $("form-error").textContent = `The styles could not be loaded: ${error.detail} (code: ${error.code})`;
  }
  const accepted = enableOtherInputs();
  try {
    await enableGlossaries(accepted);
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    $("form-error").textContent = `The glossaries could not be loaded: ${error.detail} (code: ${error.code})`;
  }
  const jobId = new URL(window.location.href).searchParams.get("job");
  if (jobId) {
    state.jobId = jobId;
    try {
      const { body } = await withKey(() => request("GET", `/jobs/${encodeURIComponent(jobId)}`));
      showView(body);
    } catch (error) {
      if (!(error instanceof Problem)) {
        throw error;
      }
      $("job-panel").hidden = false;
      $("job-error").textContent = `Job ${jobId}: ${explain(error)} (code: ${error.code})`;
    }
  }
  document.body.dataset.ready = "true";
}

start();
