// Worker-thread entry: Node 20 workers do not inherit tsx from `--import tsx` in execArgv,
// so register the tsx ESM loader here, then load the TypeScript worker body named in
// workerData.module (a file: URL).
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.module);
