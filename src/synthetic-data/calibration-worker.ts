// Helper thread of the calibration's window-statistics stage: simulates the parameters it is
// sent with the setup it was started with and posts back the loss and statistics. It writes
// nothing and keeps no state between simulations.

import { parentPort, workerData } from 'node:worker_threads';
import type { BaseProcessParams } from './base-process.js';
import { evaluateWindowFit, type WindowFitSetup } from './calibration.js';

const setup = workerData as WindowFitSetup;
const port = parentPort;
if (port !== null) {
  port.on('message', (msg: { id: number; params: BaseProcessParams }) => {
    try {
      port.postMessage({ id: msg.id, state: evaluateWindowFit(msg.params, setup) });
    } catch (err) {
      port.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
}
