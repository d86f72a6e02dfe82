// Worker thread of the dataset builder: generates the markets it is asked for (by index) with
// the settings it was started with and posts their sample blocks back. It writes nothing and
// holds no state between markets.

import { parentPort, workerData } from 'node:worker_threads';
import { seriesSamples, type DatasetSettings } from './dataset-builder.js';

const settings = workerData as DatasetSettings;
const port = parentPort;
if (port !== null) {
  port.on('message', (msg: { k: number }) => {
    try {
      const block = seriesSamples(msg.k, settings);
      const transfer = [
        ...block.windows.map((w) => w.buffer),
        block.labels.buffer,
        block.split.buffer,
      ];
      port.postMessage({ k: msg.k, block }, transfer as ArrayBuffer[]);
    } catch (err) {
      port.postMessage({ k: msg.k, error: err instanceof Error ? err.message : String(err) });
    }
  });
}
