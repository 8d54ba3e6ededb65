
// OpenCode 2.x (`@opencode/cli`) skips a module without a default export `{ id, setup }`, and
// 1.18.29+ uses `server` from the same export (the named export above is for older 1.x). 2.x
// calls `setup(ctx)` and never the V1 hooks; setup puts the same hooks on 2.x's API (as 2.1.2
// has it), so the hub sees one plugin whichever line runs it:
// - the session's `prompt` hook is 1.x's `chat.message` (passthrough; images for the vision
//   worker), `context` its system prompt, `compaction` its compaction context;
// - the tool hooks see each MCP tool a code-mode `execute` runs, by its 1.x name
//   (`orchestra_task_start`), with arguments that can still be changed;
// - 2.x's events stand in for 1.x's: an execution that ends is `session.idle`;
// - results reach the chat as synthetic messages that do not wake it (`resume: false`): the
//   model reads them on its next turn, as 1.x's `noReply` prompt has it.
const V2_IDLE = new Set(["session.execution.succeeded", "session.execution.failed", "session.execution.interrupted"]);
const v1Event = (event) => {
  const sessionID = event?.data?.sessionID;
  if (!sessionID) return null;
  if (V2_IDLE.has(event.type)) return { type: "session.idle", properties: { sessionID } };
  if (event.type === "session.execution.started") return { type: "session.status", properties: { sessionID, status: { type: "busy" } } };
  if (event.type === "session.deleted") return { type: "session.deleted", properties: { sessionID } };
  return null;
};
// 2.x's prompt (text, and files as `{uri, name, mime}`) as 1.x's message parts, and back: a file
// the hub turned into text (an image it had described) leaves the files and joins the text.
const v1Parts = (prompt) => [
  { type: "text", text: prompt.text ?? "" },
  ...(prompt.files ?? []).map((file) => ({
    type: "file",
    mime: file.mime ?? /^data:([^;,]+)/.exec(file.uri ?? "")?.[1],
    filename: file.name,
    url: file.uri,
  })),
];
const applyParts = (prompt, parts) => {
  const files = prompt.files ?? [];
  const texts = [], kept = [];
  parts.forEach((part, index) => {
    if (part?.type === "text") texts.push(part.text ?? "");
    else if (index > 0 && files[index - 1]) kept.push(files[index - 1]);
  });
  prompt.text = texts.join("\n\n");
  if (prompt.files) prompt.files = kept;
};
const setup = async (ctx) => {
  // 1.18.x calls `setup` too, besides `server`, with a context of its own that has no session or
  // tool hooks: there `server` already runs the V1 hooks, and a second plugin instance would
  // open a second delivery stream that races the first for the chat's results.
  if (typeof ctx?.session?.hook !== "function" || typeof ctx?.tool?.hook !== "function") return;
  // 2.x serves many directories from one process (its background service runs in the user's
  // home), loading plugins per directory: the project is the location, never the process's cwd.
  const directory = ctx?.location?.directory ?? ctx?.options?.directory ?? process.cwd();
  // The one call the shared factory makes on a 1.x client: add a result to a session.
  const client = {
    session: {
      prompt: ({ path, body }) => ctx.session.synthetic({
        sessionID: path.id,
        text: (body?.parts ?? []).map((part) => part.text ?? "").join("\n\n"),
        resume: false,
      }),
    },
  };
  const hooks = await OpenOrchestra({ client, directory });
  if (!hooks["chat.message"]) return; // a worker server the hub started: no hooks
  await ctx.session.hook("prompt", async (evt) => {
    const output = { parts: v1Parts(evt.prompt), message: {} };
    await hooks["chat.message"]({ sessionID: evt.sessionID }, output);
    applyParts(evt.prompt, output.parts);
  });
  await ctx.session.hook("context", async (evt) => {
    const output = { system: [] };
    await hooks["experimental.chat.system.transform"]({ sessionID: evt.sessionID }, output);
    for (const text of output.system) evt.system.push({ type: "text", text });
  });
  await ctx.session.hook("compaction", async (evt) => {
    const output = { context: [] };
    await hooks["experimental.session.compacting"]({ sessionID: evt.sessionID }, output);
    for (const text of output.context) evt.system.push({ type: "text", text });
  });
  await ctx.tool.hook("execute.before", async (evt) => {
    await hooks["tool.execute.before"]({ tool: evt.tool, sessionID: evt.sessionID, callID: evt.id }, { args: evt.input });
  });
  await ctx.tool.hook("execute.after", async (evt) => {
    await hooks["tool.execute.after"]({ tool: evt.tool, sessionID: evt.sessionID, callID: evt.id }, evt.result ?? {});
  });
  (async () => {
    for await (const event of ctx.event.subscribe()) {
      const mapped = v1Event(event);
      if (mapped) await hooks.event({ event: mapped });
    }
  })().catch(() => {}); // the stream ends with the location; nothing to do then
};
export default { id: "open-orchestra", server: OpenOrchestra, setup };
