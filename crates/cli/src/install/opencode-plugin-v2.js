
// OpenCode 2.x (`@opencode/cli`) skips a module without a default export `{ id, setup }`, and
// 1.18.29+ uses `server` from the same export (the named export above is for older 1.x). 2.x
// calls `setup(ctx)` and never the V1 hooks, so there the plugin does only what 2.x offers a hook
// for: the running-task line and the memory block in the system prompt (`session.hook("context")`).
// Not on 2.x until it has the hooks: images described by the vision worker, the compaction
// context, results delivered into the session, idle notifications, tool argument rewrites,
// passthrough (it needs `chat.message`).
const setup = async (ctx) => {
  // 2.x serves many directories from one process (its background service runs in the user's
  // home), loading plugins per directory: the project is the location, never the process's cwd.
  const directory = ctx?.location?.directory ?? ctx?.options?.directory ?? process.cwd();
  // `client` left out: without a V1 client there is nowhere to deliver results, so the shared
  // factory never opens the delivery stream (it would take results no session can show).
  const hooks = await OpenOrchestra({ client: undefined, directory });
  const systemHook = hooks["experimental.chat.system.transform"];
  if (!systemHook) return; // a worker server the hub started: no hooks
  await ctx.session.hook("context", async (evt) => {
    const output = { system: [] };
    await systemHook({ sessionID: evt.sessionID }, output);
    for (const text of output.system) evt.system.push({ type: "text", text });
  });
};
export default { id: "open-orchestra", server: OpenOrchestra, setup };
