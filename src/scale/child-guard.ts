// Loaded with `node --import` into the child process of every sweep job: when the process that
// started the job dies (a worker killed with SIGKILL, say), the child ends itself within a quarter
// of a second, so a lost worker leaves no orphan writing into a run that another worker is about to
// resume. The watch runs on its own thread, so it works while the job's main thread is busy for
// minutes, and never keeps the child alive. Does nothing else.

import { isMainThread, Worker } from 'node:worker_threads';

// Preloads may run again in the job's own worker threads: one watch per process is enough.
if (isMainThread) {
  const watch = new Worker(
    `const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, 250);`,
    { eval: true, execArgv: [] },
  );
  watch.unref();
}
