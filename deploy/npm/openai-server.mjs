#!/usr/bin/env node
// openai-server.mjs — a small OpenAI-compatible model server on llama.cpp
// through node-llama-cpp (deploy/npm/package.json; its prebuilt CPU
// binaries, no compiler). Loom's tests run it as a REAL model server
// (real tokenizer, chat template, sampling and JSON-schema grammar of
// llama.cpp) in front of generated GGUF files; it also serves any GGUF a
// user has, for trying Loom's endpoint models without a GPU server.
//
//   node deploy/npm/openai-server.mjs --model NAME=FILE.gguf [--model ...]
//        [--embed NAME=FILE.gguf ...] [--host 127.0.0.1] [--port 0]
//        [--port-file FILE] [--ctx 2048] [--threads N] [--npm-dir var/npm]
//
//   GET  /v1/models
//   POST /v1/chat/completions  messages, max_tokens, temperature, top_p,
//        top_k, seed, stop, stream (server-sent events; the first delta
//        has content null, usage in the last chunk with
//        stream_options.include_usage), response_format json_object or
//        json_schema (decoding constrained by llama.cpp's grammar)
//   POST /v1/embeddings        input: string or strings; L2-normalised
//                              vectors (as llama.cpp's server)
// Errors are OpenAI-style {"error": {"message", "type"}} with 400/404/500;
// a failure after a stream started is a `data: {"error": ...}` event.
// One request per model at a time (requests queue); the port is written
// to --port-file once the models are loaded.
import { createServer } from "node:http";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const USAGE = `usage: openai-server.mjs --model NAME=FILE.gguf [--model ...] [--embed NAME=FILE.gguf ...]
       [--host 127.0.0.1] [--port 0] [--port-file FILE] [--ctx 2048] [--threads N] [--npm-dir DIR]
An OpenAI-compatible server (/v1/chat/completions, /v1/embeddings, /v1/models) on llama.cpp (node-llama-cpp).
`;

function parseArgs(argv) {
  const o = { models: [], embeds: [], host: "127.0.0.1", port: 0, portFile: null, ctx: 2048, threads: 0, npmDir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const pair = (s) => {
      const k = s.indexOf("=");
      if (k <= 0 || k === s.length - 1) throw new Error(`expected NAME=FILE.gguf, got "${s}"`);
      return { name: s.slice(0, k), path: resolve(s.slice(k + 1)) };
    };
    if (a === "--model") o.models.push(pair(v()));
    else if (a === "--embed") o.embeds.push(pair(v()));
    else if (a === "--host") o.host = v();
    else if (a === "--port") o.port = Number(v());
    else if (a === "--port-file") o.portFile = v();
    else if (a === "--ctx") o.ctx = Number(v());
    else if (a === "--threads") o.threads = Number(v());
    else if (a === "--npm-dir") o.npmDir = v();
    else if (a === "-h" || a === "--help") { process.stdout.write(USAGE); process.exit(0); }
    else if (a === "--version") { process.stdout.write("openai-server.mjs (Loom) on node-llama-cpp\n"); process.exit(0); }
    else throw new Error(`unknown argument "${a}"`);
  }
  if (!o.models.length && !o.embeds.length) throw new Error("give at least one --model or --embed");
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error("--port must be 0..65535");
  if (!Number.isInteger(o.ctx) || o.ctx < 16) throw new Error("--ctx must be an integer >= 16");
  for (const m of [...o.models, ...o.embeds]) if (!existsSync(m.path)) throw new Error(`${m.path}: no such file`);
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`openai-server: ${e.message}\n${USAGE}`);
  process.exit(2);
}

// node-llama-cpp lives in the project's npm directory (deploy/install-npm.sh),
// not next to this file: import it from there.
const here = dirname(fileURLToPath(import.meta.url));
const npmDir = resolve(opts.npmDir || process.env.LOOM_NPM_DIR || join(here, "../../var/npm"));
const entry = join(npmDir, "node_modules/node-llama-cpp/dist/index.js");
if (!existsSync(entry)) {
  process.stderr.write(`openai-server: node-llama-cpp is not installed in ${npmDir} (run deploy/install-npm.sh)\n`);
  process.exit(3);
}
const { getLlama, LlamaChat } = await import(pathToFileURL(entry).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const chatModels = new Map(), embedModels = new Map();
for (const m of opts.models) {
  const model = await llama.loadModel({ modelPath: m.path });
  const context = await model.createContext({ contextSize: Math.min(opts.ctx, model.trainContextSize), threads: opts.threads || undefined });
  chatModels.set(m.name, { model, context, sequence: context.getSequence(), queue: Promise.resolve() });
}
for (const m of opts.embeds) {
  const model = await llama.loadModel({ modelPath: m.path });
  const context = await model.createEmbeddingContext({ threads: opts.threads || undefined });
  embedModels.set(m.name, { model, context, queue: Promise.resolve() });
}

class HttpError extends Error {
  constructor(status, message, type = "invalid_request_error") {
    super(message);
    this.status = status;
    this.type = type;
  }
}

// Runs fn after the model's earlier requests: one at a time per model.
function serialised(entry, fn) {
  const run = entry.queue.then(fn, fn);
  entry.queue = run.catch(() => {});
  return run;
}

function sendJson(res, status, obj) {
  const b = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": b.length });
  res.end(b);
}

function readBody(req) {
  return new Promise((ok, fail) => {
    const parts = [];
    let n = 0;
    req.on("data", (c) => {
      n += c.length;
      if (n > 16 << 20) { fail(new HttpError(413, "request body over 16 MiB")); req.destroy(); }
      else parts.push(c);
    });
    req.on("end", () => {
      try {
        const v = JSON.parse(Buffer.concat(parts).toString("utf8") || "null");
        if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
        ok(v);
      } catch (e) {
        fail(new HttpError(400, `the request body is not a JSON object: ${e.message}`));
      }
    });
    req.on("error", fail);
  });
}

function num(body, k, lo, hi) {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !(v >= lo && v <= hi)) throw new HttpError(400, `"${k}" must be a number in [${lo}, ${hi}]`);
  return v;
}

// OpenAI messages -> node-llama-cpp chat history, ending with the model's turn.
function history(messages) {
  if (!Array.isArray(messages) || !messages.length) throw new HttpError(400, '"messages" must be a non-empty array');
  const h = [];
  messages.forEach((m, i) => {
    const text = typeof m?.content === "string" ? m.content
      : Array.isArray(m?.content) ? m.content.filter((p) => p?.type === "text").map((p) => p.text).join("") : null;
    if (text === null) throw new HttpError(400, `messages[${i}].content must be a string or text parts`);
    if (m.role === "system" || m.role === "developer") h.push({ type: "system", text });
    else if (m.role === "assistant") h.push({ type: "model", response: [text] });
    else if (m.role === "user" || m.role === "tool") h.push({ type: "user", text });
    else throw new HttpError(400, `messages[${i}].role "${m?.role}" is not system, user, assistant or tool`);
  });
  h.push({ type: "model", response: [] });
  return h;
}

async function grammarFor(rf) {
  if (!rf || rf.type === "text") return undefined;
  if (rf.type === "json_object") return llama.getGrammarFor("json");
  if (rf.type === "json_schema") {
    const schema = rf.json_schema?.schema;
    if (!schema || typeof schema !== "object") throw new HttpError(400, "response_format.json_schema.schema must be an object");
    try {
      return await llama.createGrammarForJsonSchema(schema);
    } catch (e) {
      throw new HttpError(400, `response_format.json_schema: ${e.message}`);
    }
  }
  throw new HttpError(400, `response_format.type "${rf.type}" is not text, json_object or json_schema`);
}

const FINISH = { maxTokens: "length", abort: "stop", eogToken: "stop", stopGenerationTrigger: "stop", customStopTrigger: "stop" };
let nextId = 1;

async function chatCompletions(req, res, body) {
  const m = chatModels.get(body.model);
  if (!m) throw new HttpError(404, `model "${body.model}" is not served here (have: ${[...chatModels.keys()].join(", ")})`, "not_found_error");
  const hist = history(body.messages);
  const maxTokens = num(body, "max_tokens", 1, 1 << 20) ?? num(body, "max_completion_tokens", 1, 1 << 20);
  const params = {
    maxTokens,
    temperature: num(body, "temperature", 0, 2) ?? 0,
    topP: num(body, "top_p", 0, 1),
    topK: num(body, "top_k", 0, 1 << 20),
    seed: num(body, "seed", 0, 2 ** 32 - 1),
  };
  const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== "string")) throw new HttpError(400, '"stop" must be a string or strings');
  if (stop.length) params.customStopTriggers = stop.filter((s) => s.length);
  params.grammar = await grammarFor(body.response_format);
  const stream = body.stream === true, usageInStream = stream && body.stream_options?.include_usage === true;
  const id = `chatcmpl-${process.pid}-${nextId++}`, created = Math.floor(Date.now() / 1000);
  const chunk = (delta, finish, usage) => {
    const o = { id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] };
    if (usage) o.usage = usage;
    res.write(`data: ${JSON.stringify(o)}\n\n`);
  };
  const abort = new AbortController();
  res.on("close", () => abort.abort());
  return serialised(m, async () => {
    if (abort.signal.aborted) return;
    await m.sequence.clearHistory();
    const meter0 = m.sequence.tokenMeter.getState();
    if (stream) {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
      chunk({ role: "assistant", content: null }, null);
    }
    const chat = new LlamaChat({ contextSequence: m.sequence, autoDisposeSequence: false });
    let r;
    try {
      r = await chat.generateResponse(hist, {
        ...params,
        signal: abort.signal,
        stopOnAbortSignal: true,
        onTextChunk: stream ? (t) => { if (t) chunk({ content: t }, null); } : undefined,
      });
    } catch (e) {
      if (!stream) throw e;
      res.write(`data: ${JSON.stringify({ error: { message: e.message, type: "server_error" } })}\n\n`);
      res.end();
      return;
    } finally {
      chat.dispose({ disposeSequence: false });
    }
    const used = m.sequence.tokenMeter.diff(meter0);
    const usage = { prompt_tokens: used.usedInputTokens, completion_tokens: used.usedOutputTokens,
      total_tokens: used.usedInputTokens + used.usedOutputTokens };
    const finish = FINISH[r.metadata.stopReason] ?? "stop";
    if (stream) {
      chunk({}, finish, usageInStream ? usage : undefined);
      res.end("data: [DONE]\n\n");
    } else {
      sendJson(res, 200, { id, object: "chat.completion", created, model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: r.response }, finish_reason: finish }], usage });
    }
  });
}

async function embeddings(req, res, body) {
  const m = embedModels.get(body.model);
  if (!m) throw new HttpError(404, `embedding model "${body.model}" is not served here (have: ${[...embedModels.keys()].join(", ")})`, "not_found_error");
  const inputs = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(inputs) || !inputs.length || inputs.some((s) => typeof s !== "string"))
    throw new HttpError(400, '"input" must be a string or a non-empty array of strings');
  return serialised(m, async () => {
    const data = [];
    let tokens = 0;
    for (const [index, text] of inputs.entries()) {
      tokens += m.model.tokenize(text).length;
      const v = (await m.context.getEmbeddingFor(text)).vector;
      const norm = Math.hypot(...v) || 1;
      data.push({ object: "embedding", index, embedding: Array.from(v, (x) => x / norm) });
    }
    sendJson(res, 200, { object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  });
}

const server = createServer(async (req, res) => {
  const path = (req.url || "").split("?")[0];
  try {
    if (req.method === "GET" && path === "/v1/models") {
      const data = [...chatModels.keys(), ...embedModels.keys()].map((id) => ({ id, object: "model", owned_by: "loom-test" }));
      return sendJson(res, 200, { object: "list", data });
    }
    if (req.method === "GET" && path === "/health") return sendJson(res, 200, { status: "ok" });
    if (req.method !== "POST") throw new HttpError(404, `no route ${req.method} ${path}`, "not_found_error");
    if (path === "/v1/chat/completions") return await chatCompletions(req, res, await readBody(req));
    if (path === "/v1/embeddings") return await embeddings(req, res, await readBody(req));
    throw new HttpError(404, `no route POST ${path}`, "not_found_error");
  } catch (e) {
    const status = e instanceof HttpError ? e.status : 500;
    if (!(e instanceof HttpError)) process.stderr.write(`openai-server: ${req.method} ${path}: ${e.stack || e}\n`);
    if (res.headersSent) res.end();
    else sendJson(res, status, { error: { message: e.message, type: e.type || "server_error" } });
  }
});
server.listen(opts.port, opts.host, () => {
  const port = server.address().port;
  process.stderr.write(`openai-server: listening on http://${opts.host}:${port}/v1 (models: ${[...chatModels.keys(), ...embedModels.keys()].join(", ")})\n`);
  if (opts.portFile) writeFileSync(opts.portFile, `${port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { server.close(); process.exit(0); });
