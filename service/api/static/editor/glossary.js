// Glossaries on the editor page: the picker (server default, none, or one of the caller's own,
// from the DeepL-shaped /v2/glossaries API) and the report of a finished job (which entries were
// applied, needed a fallback, or were missed).  Everything is drawn with textContent.

import { Problem, request } from "./api.js";
import { el } from "./render.js";

// The id under which the server's default glossary is read (`GET /v2/glossaries/default`).
const DEFAULT_ID = "default";
// What each kind of the report is called on the page, in the order it is shown.
const KINDS = [
  ["applied", "Applied"],
  ["fallback", "Needed a fallback"],
  ["missed", "Missed"],
];
const METHODS = { nbest: "another translation candidate", repair: "replaced after translation" };

function entries(count) {
  return `${count.toLocaleString("en")} ${count === 1 ? "entry" : "entries"}`;
}

function option(kind, value, text, description, name) {
  const node = el("option", { text });
  node.value = value;
  node.dataset.kind = kind;
  node.dataset.description = description;
  node.dataset.name = name;
  return node;
}

const DEFAULT_NAME = "The server default glossary";

/**
 * Fill the picker: "Server default" when the server has one (and selected then, as a request
 * without `glossary_id` gets it), "None", and the caller's glossaries.  `call` wraps a request
 * (it asks for the API key on a 401).  Resolves to a message for the help line when the
 * caller's glossaries could not be listed, else null.
 */
export async function loadGlossaries(select, call) {
  const options = [];
  let note = null;
  try {
    const { body } = await call(() => request("GET", `/v2/glossaries/${DEFAULT_ID}`));
    options.push(
      option(
        "default",
        DEFAULT_ID,
        `Server default (${entries(body.entry_count)})`,
        `The server's glossary, ${entries(body.entry_count)}: names and terms are spelled as it says.`,
        DEFAULT_NAME,
      ),
    );
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    if (error.status !== 404) {
      // Unknown whether there is one: offer what a request without a glossary_id gets.
      const description = "Whatever glossary the server uses by default.";
      options.push(option("default", DEFAULT_ID, "Server default", description, DEFAULT_NAME));
    }
  }
  options.push(option("none", "", "None", "No glossary: names are spelled as the model writes them.", "None"));
  try {
    const { body } = await call(() => request("GET", "/v2/glossaries"));
    for (const glossary of body.glossaries || []) {
      options.push(
        option(
          "own",
          glossary.glossary_id,
          `${glossary.name} (${entries(glossary.entry_count)})`,
          `Your glossary “${glossary.name}”, ${entries(glossary.entry_count)}, made ${glossary.creation_time.slice(0, 10)}.`,
          `Your glossary “${glossary.name}”`,
        ),
      );
    }
  } catch (error) {
    if (!(error instanceof Problem)) {
      throw error;
    }
    note = `Your own glossaries could not be listed: ${error.detail} (code: ${error.code}).`;
  }
  select.replaceChildren(...options);
  select.selectedIndex = 0;
  return note;
}

/** What the result calls the glossary with this id: its name when the picker lists it. */
export function glossaryName(select, glossaryId) {
  if (glossaryId === DEFAULT_ID) {
    return DEFAULT_NAME;
  }
  const listed = [...select.options].find((node) => node.dataset.kind === "own" && node.value === glossaryId);
  return listed ? listed.dataset.name : `Glossary ${glossaryId}`;
}

/** The help line of the picked glossary. */
export function describeGlossary(select) {
  const picked = select.selectedOptions[0];
  return picked ? picked.dataset.description : "";
}

/** The request's `glossary_id`: omitted for the server default, null for none, else the id. */
export function glossaryField(select) {
  const picked = select.selectedOptions[0];
  if (!picked || picked.dataset.kind === "default") {
    return {};
  }
  return { glossary_id: picked.dataset.kind === "none" ? null : picked.value };
}

/** Each entry the sentences report under `kind`, once, with how often (and, for fallbacks, how). */
function tally(alignment, kind) {
  const found = new Map();
  for (const pair of alignment) {
    for (const term of (pair.glossary && pair.glossary[kind]) || []) {
      const key = `${term.source}\t${term.target}`;
      const seen = found.get(key) || { source: term.source, target: term.target, count: 0, methods: new Set() };
      seen.count += 1;
      if (term.method) {
        seen.methods.add(term.method);
      }
      found.set(key, seen);
    }
  }
  return [...found.values()];
}

function termItem(term, kind) {
  const item = el("li", { className: `term ${kind}` });
  item.append(
    el("span", { className: "source", text: term.source, attrs: { lang: "de" } }),
    document.createTextNode(" → "),
    el("span", { className: "target", text: term.target, attrs: { lang: "en" } }),
  );
  if (term.count !== undefined) {
    item.append(el("span", { className: "count", text: ` × ${term.count}` }));
  }
  if (term.methods && term.methods.size) {
    const how = [...term.methods].map((method) => METHODS[method] || method).join(", ");
    item.append(el("span", { className: "method", text: ` (${how})` }));
  }
  return item;
}

/**
 * The glossary section of a result: totals, then the entries of each kind with their counts.
 * Hidden when the job used no glossary.  `nameOf(id)` names a glossary the picker knows.
 */
export function renderGlossary(panel, result, nameOf) {
  const report = result.glossary;
  const body = panel.querySelector(".glossary-report");
  body.replaceChildren();
  if (!report) {
    panel.hidden = true;
    return;
  }
  const alignment = result.alignment || [];
  const name = nameOf(report.glossary_id);
  const total = report.applied + report.fallback + report.missed;
  const line =
    total === 0
      ? `${name}: no entry of this glossary occurs in the article.`
      : `${name}: ${report.applied} applied, ${report.fallback} needed a fallback, ${report.missed} missed.`;
  body.append(el("p", { className: "glossary-totals", text: line }));
  for (const [kind, label] of KINDS) {
    let terms = tally(alignment, kind);
    if (kind === "missed" && terms.length === 0) {
      terms = (report.missed_terms || []).map((term) => ({ source: term.source, target: term.target }));
    }
    if (terms.length === 0) {
      continue;
    }
    const group = el("div", { className: `glossary-group ${kind}`, attrs: { "data-kind": kind } });
    const headingId = `glossary-${kind}-heading`;
    group.append(el("h4", { text: label, attrs: { id: headingId } }));
    const list = el("ul", { attrs: { "aria-labelledby": headingId } });
    list.append(...terms.map((term) => termItem(term, kind)));
    group.append(list);
    body.append(group);
  }
  if ((report.summary_replaced || []).length) {
    const replaced = report.summary_replaced.map((term) => `${term.source} → ${term.target}`).join(", ");
    body.append(el("p", { className: "help", text: `Replaced in the summary: ${replaced}.` }));
  }
  if (total > 0) {
    body.append(
      el("p", {
        className: "help",
        text: "In the translation below, glossary terms are highlighted in the English; missed ones are marked in the German.",
      }),
    );
  }
  panel.hidden = false;
}
