// Rendering a job's result, and its paragraphs as they are translated.  Every model output and every user input is set with
// textContent, never parsed as HTML: an article or a summary cannot inject markup.

export function el(tag, { className, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  for (const [name, value] of Object.entries(attrs || {})) {
    node.setAttribute(name, value);
  }
  return node;
}

/** The summary, with each fact the article does not support underlined. */
export function renderSummary(target, result) {
  target.replaceChildren();
  const summary = result.summary || "";
  const flagged = (result.checks || [])
    .filter((check) => !check.supported && check.end > check.start && check.end <= summary.length)
    .sort((a, b) => a.start - b.start);
  let position = 0;
  for (const check of flagged) {
    if (check.start < position) {
      continue;
    }
    target.append(document.createTextNode(summary.slice(position, check.start)));
    target.append(
      el("mark", {
        className: "unsupported",
        text: summary.slice(check.start, check.end),
        attrs: { title: `Not found in the article (${check.kind})` },
      }),
    );
    position = check.end;
  }
  target.append(document.createTextNode(summary.slice(position)));
  return flagged.length;
}

/**
 * `text` as nodes, with every occurrence of each mark's `text` wrapped in a <mark> (longest
 * first, never overlapping); marks are {text, className, title}.
 */
export function withMarks(text, marks) {
  const found = [];
  for (const mark of [...marks].sort((a, b) => b.text.length - a.text.length)) {
    if (!mark.text) {
      continue;
    }
    for (let at = text.indexOf(mark.text); at >= 0; at = text.indexOf(mark.text, at + mark.text.length)) {
      const end = at + mark.text.length;
      if (!found.some((other) => at < other.end && other.start < end)) {
        found.push({ start: at, end, mark });
      }
    }
  }
  found.sort((a, b) => a.start - b.start);
  const nodes = [];
  let position = 0;
  for (const { start, end, mark } of found) {
    nodes.push(document.createTextNode(text.slice(position, start)));
    nodes.push(el("mark", { className: mark.className, text: text.slice(start, end), attrs: { title: mark.title } }));
    position = end;
  }
  nodes.push(document.createTextNode(text.slice(position)));
  return nodes;
}

/** The glossary terms of one sentence to mark: targets reached in the English, sources missed
 *  in the German. */
function glossaryMarks(report) {
  const english = [];
  const german = [];
  if (!report) {
    return { english, german };
  }
  for (const term of report.applied || []) {
    english.push({ text: term.target, className: "glossary-term", title: `Glossary: ${term.source} → ${term.target}` });
  }
  for (const term of report.fallback || []) {
    const title = `Glossary: ${term.source} → ${term.target} (fallback: ${term.method})`;
    english.push({ text: term.target, className: "glossary-term fallback", title });
  }
  for (const term of report.missed || []) {
    german.push({ text: term.source, className: "glossary-missed", title: `Glossary: ${term.source} → ${term.target} missed` });
  }
  return { english, german };
}

function highlightPartner(row) {
  const on = () => row.classList.add("partnered");
  const off = () => row.classList.remove("partnered");
  for (const cell of row.cells) {
    cell.addEventListener("mouseenter", on);
    cell.addEventListener("mouseleave", off);
    cell.addEventListener("focus", on);
    cell.addEventListener("blur", off);
  }
}

function paragraphBody(paragraph) {
  return el("tbody", { className: "paragraph", attrs: { "data-paragraph": String(paragraph) } });
}

/** German and English side by side: one row per sentence, one tbody per paragraph. */
export function renderAlignment(table, alignment) {
  for (const body of table.querySelectorAll("tbody")) {
    body.remove();
  }
  let body = null;
  let paragraph = null;
  alignment.forEach((pair, index) => {
    if (body === null || pair.paragraph !== paragraph) {
      paragraph = pair.paragraph;
      body = paragraphBody(paragraph);
      table.append(body);
    }
    body.append(sentenceRow(pair, index));
  });
}

/**
 * One paragraph translated while the job runs ({paragraph, first_sentence, sentences}), put in
 * its place among the paragraphs shown so far (they arrive out of order); shown again, it
 * replaces itself.
 */
export function addParagraph(table, translated) {
  const body = paragraphBody(translated.paragraph);
  translated.sentences.forEach((pair, offset) => body.append(sentenceRow(pair, translated.first_sentence + offset)));
  const shown = [...table.querySelectorAll("tbody")];
  const same = shown.find((other) => Number(other.dataset.paragraph) === translated.paragraph);
  if (same) {
    same.replaceWith(body);
    return;
  }
  const next = shown.find((other) => Number(other.dataset.paragraph) > translated.paragraph);
  table.insertBefore(body, next || null);
}

/** One sentence's row: German and English cells that light each other up. */
function sentenceRow(pair, index) {
  const row = el("tr", { className: pair.cached ? "sentence cached" : "sentence" });
  const label = `Sentence ${index + 1}`;
  const german = el("td", { className: "de", attrs: { lang: "de", tabindex: "0" } });
  german.setAttribute("aria-label", `${label}, German`);
  const marks = glossaryMarks(pair.glossary);
  const germanText = el("span");
  germanText.append(...withMarks(pair.de, marks.german));
  german.append(germanText);
  const english = el("td", { className: "en", attrs: { lang: "en", tabindex: "0" } });
  english.setAttribute("aria-label", `${label}, English${pair.cached ? ", from the cache" : ""}`);
  const englishText = el("span");
  englishText.append(...withMarks(pair.en, marks.english));
  english.append(englishText);
  if (pair.cached) {
    english.append(el("span", { className: "cached-mark", text: "cached" }));
  }
  row.append(german, english);
  highlightPartner(row);
  return row;
}

function percent(share) {
  return `${Math.round(share * 100)} %`;
}

/** Models, timings, German share and the sentence counts, as a definition list. */
export function renderDetails(list, result) {
  list.replaceChildren();
  const add = (term, value) => list.append(el("dt", { text: term }), el("dd", { text: value }));
  add("Style", result.style);
  add("German share", percent(result.german_share));
  add(
    "Sentences",
    `${result.sentences_in} in, ${result.sentences_translated} translated, ` +
      `${result.sentences_from_cache} from the cache`,
  );
  add("Whole result from the cache", result.cached ? "yes" : "no");
  for (const [role, model] of Object.entries(result.models || {})) {
    add(`Model (${role})`, `${model.id} @ ${model.revision} (${model.backend}, ${model.compute_type})`);
  }
  for (const [stage, ms] of Object.entries(result.timings_ms || {})) {
    // "translate_ms" -> "Time: translate": the value is shown in seconds.
    add(`Time: ${stage.replace(/_ms$/, "")}`, `${(ms / 1000).toFixed(2)} s`);
  }
}

/** Where the article came from (HTML or URL input), when the result says. */
export function renderSource(panel, list, source) {
  list.replaceChildren();
  if (source === undefined || source === null) {
    panel.hidden = true;
    return;
  }
  const entries = typeof source === "object" ? Object.entries(source) : [["source", source]];
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "") {
      continue;
    }
    const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
    list.append(el("dt", { text: name.replaceAll("_", " ") }), el("dd", { text: shown }));
  }
  panel.hidden = list.childElementCount === 0;
}

/** Both texts as Markdown: title, summary, translation, then the German by paragraph. */
export function markdownOf(result, title) {
  const paragraphs = new Map();
  for (const pair of result.alignment || []) {
    const sentences = paragraphs.get(pair.paragraph) || [];
    sentences.push(pair.de);
    paragraphs.set(pair.paragraph, sentences);
  }
  const german = [...paragraphs.values()].map((sentences) => sentences.join(" ")).join("\n\n");
  const heading = result.title_en || title || "Article";
  return [
    `# ${heading}`,
    "## Summary",
    result.summary,
    "## Translation",
    result.translation,
    "## German original",
    german,
    "",
  ].join("\n\n");
}
