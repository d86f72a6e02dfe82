// Loaded with `node --import` into the child process of every sweep job: when the process that
// started the job dies (its IPC channel closes, e.g. a worker killed with SIGKILL), the child ends
// itself, so a lost worker leaves no orphan writing into a run that another worker is about to
// resume. The channel never keeps the child alive. Does nothing else.

if (process.channel !== undefined) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}

export {};
