// The public HTTP API, as the editor page uses it: the API key (kept in this tab's
// sessionStorage, sent as a header, never in a URL), problem documents, and a job's event
// stream read with fetch and a stream reader (EventSource cannot send the key header).

const KEY_STORAGE = "kurzgefasst.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  if (key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  } else {
    sessionStorage.removeItem(KEY_STORAGE);
  }
}

/** An error answer of the API: its RFC 9457 problem document (or the DeepL-shaped
 *  `{"message"}` of the /v2 endpoints) and HTTP status. */
export class Problem extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.message)) || `the server answered ${status}`;
    super(detail);
    this.status = status;
    this.body = body || {};
    this.code = this.body.code || `http_${status}`;
    this.detail = detail;
  }
}

function headers(extra) {
  const all = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) {
    all["X-API-Key"] = key;
  }
  return all;
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new Problem(response.status, body);
}

/** A JSON request; resolves to {status, body}, rejects with a Problem for 4xx/5xx. */
export async function request(method, path, payload) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (payload !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Problem(0, { code: "network", detail: `the server cannot be reached (${error.message})` });
  }
  if (!response.ok) {
    throw await problemOf(response);
  }
  return { status: response.status, body: await response.json() };
}

/** Which article inputs (besides `text`) and options the server accepts, from its own
 *  OpenAPI document. */
export async function acceptedInputs() {
  try {
    const { body } = await request("GET", "/schema/openapi.json");
    const properties = body.components.schemas.SummarizeRequest.properties || {};
    return { url: "url" in properties, html: "html" in properties, glossary: "glossary_id" in properties };
  } catch {
    return { url: false, html: false, glossary: false };
  }
}

/**
 * Follow a job's event stream: onProgress({status, progress}) for each `progress` event,
 * onTranslation({paragraph, first_sentence, sentences}) for each paragraph translated while the
 * job runs (those done before the stream opened come first); resolves to the job view of the
 * `done` event.  `signal` aborts the stream.
 */
export async function followEvents(jobId, onProgress, signal, onTranslation = () => {}) {
  const path = `/jobs/${encodeURIComponent(jobId)}/events`;
  const response = await fetch(path, {
    headers: headers({ Accept: "text/event-stream" }),
    cache: "no-store",
    signal,
  });
  if (!response.ok) {
    throw await problemOf(response);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event.name === "progress") {
        onProgress(JSON.parse(event.data));
      } else if (event.name === "translation") {
        onTranslation(JSON.parse(event.data));
      } else if (event.name === "done") {
        reader.cancel().catch(() => {});
        return JSON.parse(event.data);
      } else if (event.name === "error") {
        throw new Problem(503, JSON.parse(event.data));
      }
    }
  }
  throw new Problem(0, { code: "stream_closed", detail: "the event stream ended before the job did" });
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) {
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      name = value;
    } else if (field === "data") {
      data.push(value);
    }
  }
  return { name, data: data.join("\n") };
}
