// Open Orchestra plugin for OpenCode, V1 plugin API (opencode-ai 1.18). orchestra __ORCHESTRA_VERSION__
// Written by `orchestra install`, which replaces it when Orchestra changes; `orchestra uninstall`
// removes it. Each hook is one short call to the project's Orchestra hub, where all the logic
// lives; with the hub down or slow a hook gives up within 150 ms (the first within 300 ms: it
// may wait for the hub to be found) and the chat goes on unchanged.
// The hub's address and token come from `orchestra endpoint` through a pipe, never a file; the
// plugin starts the hub when OpenCode starts, and later only finds one (`orchestra stop` holds).
import { spawn } from "node:child_process";

const ORCHESTRA = __ORCHESTRA_BIN__;
const QUICK_MS = 150;
// The longest a hook waits for a body the hub says is coming (a blocking image description):
// whatever the hub answers, a timer stays finite and within what Node can schedule.
const MAX_WAIT_MS = 3_600_000;
// The only tools the hub hears about: Orchestra's own. Other tools' calls (bash, edit, …) never
// leave OpenCode, and nothing the hub answers can change their arguments.
const OWN_TOOLS = new Set(["orchestra_task_start", "orchestra_task_await", "orchestra_task_peek"]);
const waitMs = (header) => Math.min(Math.max(Number(header) || 0, 0), MAX_WAIT_MS);
const EVENTS = new Set(["session.status", "session.idle", "session.deleted"]);

export const OpenOrchestra = async ({ client, directory }) => {
  if (process.env.ORCHESTRA_WORKER === "1") return {}; // a worker server the hub started
  const instance = crypto.randomUUID();
  const wantAfter = new Set();
  let hub = null, down = false, finding = null, lastFind = 0, firstWait = true, following = false;
  let findGap = 2000; // doubles while no hub runs (up to 30 s): each search is a process
  let events = Promise.resolve();
  const find = (start = false) => {
    if (finding || Date.now() - lastFind < findGap) return finding;
    lastFind = Date.now();
    finding = new Promise((resolve) => {
      let out = "";
      const args = ["--project", directory, "endpoint", ...(start ? [] : ["--no-start"])];
      const child = spawn(ORCHESTRA, args, { stdio: ["ignore", "pipe", "ignore"] });
      child.stdout.on("data", (chunk) => (out += chunk));
      child.on("error", () => resolve(null));
      child.on("close", () => { try { resolve(JSON.parse(out)); } catch { resolve(null); } });
    }).then((found) => {
      hub = found; down = false; finding = null;
      findGap = found ? 2000 : Math.min(findGap * 2, 30000);
      if (hub && client) follow(hub);
      return hub;
    });
    return finding;
  };
  // A hub that missed a deadline is skipped until it answers a health check; one that refuses
  // is forgotten, and a later hook looks for the project's hub again.
  const probe = async (h) => {
    const ok = await fetch(`${h.url}/api/v1/health`, { headers: headers(h), signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);
    if (hub === h) { down = false; if (!ok) hub = null; }
  };
  const headers = (h) => ({ authorization: `Bearer ${h.token}`, "content-type": "application/json", "x-orchestra-plugin": instance });
  const call = async (route, body) => {
    if (!hub && firstWait) { firstWait = false; await Promise.race([find(), new Promise((r) => setTimeout(r, QUICK_MS))]); }
    const h = hub;
    if (!h) { find(); return null; }
    if (down) return null;
    const abort = new AbortController();
    let timer = setTimeout(() => abort.abort(), QUICK_MS);
    let answered = false;
    try {
      const res = await fetch(`${h.url}/api/v1/hooks/${route}`, { method: "POST", headers: headers(h), body: JSON.stringify(body), signal: abort.signal });
      answered = true;
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(), QUICK_MS + waitMs(res.headers.get("x-orchestra-wait-ms")));
      return res.ok ? await res.json() : null;
    } catch {
      // A hub that sent its headers is up: a body that went wrong (or came late) costs this hook
      // only, not the next ones, one of which may be a message the hub must see (passthrough).
      if (!answered && hub === h && !down) { down = true; probe(h); }
      return null;
    } finally { clearTimeout(timer); }
  };
  // Finished tasks' results, added to their sessions without a reply.
  const follow = async (h) => {
    if (following) return;
    following = true;
    try {
      const res = await fetch(`${h.url}/api/v1/hooks/deliveries`, { headers: headers(h) });
      if (!res.ok) throw new Error(`deliveries: ${res.status}`);
      const reader = res.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffer += decoder.decode(chunk.value, { stream: true });
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const { sessionID, text } = JSON.parse(line);
          await client.session.prompt({ path: { id: sessionID }, body: { noReply: true, parts: [{ type: "text", text }] } }).catch(() => {});
        }
      }
    } catch {}
    following = false;
    if (hub === h) { hub = null; refind(); }
  };
  // The hub went away (restarted, or `orchestra stop`): look for the project's hub again, less
  // often while none runs (`find` backs off to 30 s), so the next message already reaches a
  // restarted hub: passthrough, say, is the hub's state and must not skip a message.
  const refind = () => {
    const timer = setTimeout(async () => {
      if (hub) return;
      if (!(await find())) refind();
    }, findGap);
    timer.unref?.();
  };
  find(true);
  return {
    "chat.message": async (input, output) => {
      const r = await call("chat-message", { sessionID: input.sessionID, model: input.model, messageModel: output.message?.model, parts: output.parts });
      for (const { index, part } of r?.replace ?? []) output.parts[index] = part;
    },
    "experimental.chat.system.transform": async (input, output) => {
      const r = await call("system", { sessionID: input.sessionID });
      output.system.push(...(r?.system ?? []));
    },
    "experimental.session.compacting": async (input, output) => {
      const r = await call("compacting", { sessionID: input.sessionID });
      output.context.push(...(r?.context ?? []));
    },
    "tool.execute.before": async (input, output) => {
      if (!OWN_TOOLS.has(input.tool)) return;
      const r = await call("tool-before", { tool: input.tool, sessionID: input.sessionID, callID: input.callID });
      // The one argument the hub may add: the calling session, which the plugin knows itself.
      if (input.tool === "orchestra_task_start" && r?.args?.callerSessionId !== undefined) output.args.callerSessionId = input.sessionID;
      if (r?.after) wantAfter.add(input.callID);
    },
    "tool.execute.after": async (input, output) => {
      if (wantAfter.delete(input.callID)) await call("tool-after", { tool: input.tool, sessionID: input.sessionID, output });
    },
    event: async ({ event }) => {
      if (EVENTS.has(event.type)) events = events.then(() => call("event", { type: event.type, properties: event.properties }));
    },
  };
};
